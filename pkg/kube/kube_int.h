/* Private declarations shared by the files of pkg/kube. */
#ifndef FMW_KUBE_INT_H
#define FMW_KUBE_INT_H

#include "pkg/kube/kube.h"

void fmw_kube_global_init(void);

#endif
