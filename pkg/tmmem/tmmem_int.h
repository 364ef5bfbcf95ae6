/* Private declarations shared by the files of pkg/tmmem. */
#ifndef FMW_TMMEM_INT_H
#define FMW_TMMEM_INT_H

#include "pkg/tmmem/tmmem.h"

/*
 * ExternalResourceUtils.getExternalResourcesCollection (1.13+): the names of external-resources,
 * each with a positive amount, in the order Flink's map holds them, into r->resources; the WARN
 * lines for names without a usable amount. FMW_EINVAL with Flink's text when the list or an
 * amount does not parse.
 */
FMW_NODISCARD enum fmw_err fmw_tm_external_resources(struct fmw_pm *pm, bool yaml_lists,
                                                     struct fmw_tm_result *r);

/* The amount an ExternalResource made from `amount` (a long) prints: Java's
 * BigDecimal.valueOf((double) amount).longValue(). */
int64_t fmw_tm_resource_amount(int64_t amount);

#endif
