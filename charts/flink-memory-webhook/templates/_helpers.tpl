{{/* Names. The fullname is the release name, unless it already contains the chart's name. */}}
{{- define "fmw.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fmw.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "fmw.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | quote }}
{{ include "fmw.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
{{- end -}}

{{- define "fmw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fmw.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- define "fmw.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fmw.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret that holds tls.crt, tls.key (and ca.crt when the chart or cert-manager makes it). */}}
{{- define "fmw.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- required "tls.secret.name is required with tls.mode=secret" .Values.tls.secret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "fmw.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "fmw.serviceDNS" -}}
{{- printf "%s.%s.svc" (include "fmw.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "fmw.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The generated TLS material, computed once per render and cached in .Values so that the Secret,
the Deployment's checksum and the webhook's caBundle agree. An existing Secret with all three
keys is reused (helm upgrade keeps the CA); tls.generate.renew makes a new pair from the same CA.
*/}}
{{- define "fmw.generatedTLS" -}}
{{- if not (hasKey .Values.tls "_generated") -}}
{{- $name := include "fmw.tlsSecretName" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- $data := dict -}}
{{- if and $existing $existing.data -}}
{{- $data = $existing.data -}}
{{- end -}}
{{- $svc := include "fmw.fullname" . -}}
{{- $dns := list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) -}}
{{- $days := int .Values.tls.generate.validityDays -}}
{{- $out := dict -}}
{{- if and (index $data "ca.crt") (index $data "tls.crt") (index $data "tls.key") (index $data "ca.key") -}}
{{- if .Values.tls.generate.renew -}}
{{- $ca := buildCustomCert (index $data "ca.crt") (index $data "ca.key") -}}
{{- $cert := genSignedCert (include "fmw.serviceDNS" .) nil $dns $days $ca -}}
{{- $_ := set $out "ca.crt" (index $data "ca.crt") -}}
{{- $_ := set $out "ca.key" (index $data "ca.key") -}}
{{- $_ := set $out "tls.crt" ($cert.Cert | b64enc) -}}
{{- $_ := set $out "tls.key" ($cert.Key | b64enc) -}}
{{- else -}}
{{- $out = pick $data "ca.crt" "ca.key" "tls.crt" "tls.key" -}}
{{- end -}}
{{- else -}}
{{- $ca := genCA (printf "%s-ca" $svc) $days -}}
{{- $cert := genSignedCert (include "fmw.serviceDNS" .) nil $dns $days $ca -}}
{{- $_ := set $out "ca.crt" ($ca.Cert | b64enc) -}}
{{- $_ := set $out "ca.key" ($ca.Key | b64enc) -}}
{{- $_ := set $out "tls.crt" ($cert.Cert | b64enc) -}}
{{- $_ := set $out "tls.key" ($cert.Key | b64enc) -}}
{{- end -}}
{{- $_ := set .Values.tls "_generated" $out -}}
{{- end -}}
{{- end -}}

{{/* The caBundle of the webhook configuration, base64 of PEM; empty with cert-manager (injected). */}}
{{- define "fmw.caBundle" -}}
{{- if .Values.webhook.url -}}
{{- required "webhook.caBundle is required with webhook.url (base64 of the PEM CA that signed the serving certificate)" .Values.webhook.caBundle -}}
{{- else if .Values.webhook.caBundle -}}
{{- .Values.webhook.caBundle -}}
{{- else if eq .Values.tls.mode "generate" -}}
{{- include "fmw.generatedTLS" . -}}
{{- index .Values.tls._generated "ca.crt" -}}
{{- else if eq .Values.tls.mode "secret" -}}
{{- required "tls.secret.caBundle is required with tls.mode=secret (base64 of the PEM CA)" .Values.tls.secret.caBundle -}}
{{- end -}}
{{- end -}}

{{/* Does the cluster accept matchConditions (admissionregistration.k8s.io/v1, GA in 1.30)? */}}
{{- define "fmw.matchConditions" -}}
{{- $on := .Values.webhook.matchConditions.enabled -}}
{{- if eq (toString $on) "auto" -}}
{{- if semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version -}}true{{- end -}}
{{- else if eq (toString $on) "true" -}}true
{{- end -}}
{{- end -}}

{{/* The namespaces the webhook never acts in: the listed ones and the release's own. */}}
{{- define "fmw.namespaceSelector" -}}
{{- $exprs := list (dict "key" "kubernetes.io/metadata.name" "operator" "NotIn" "values" (append .Values.webhook.excludeNamespaces .Release.Namespace | uniq)) -}}
{{- $exprs = concat $exprs (default list .Values.webhook.namespaceSelector.matchExpressions) -}}
{{- $sel := dict "matchExpressions" $exprs -}}
{{- if .Values.webhook.namespaceSelector.matchLabels -}}
{{- $_ := set $sel "matchLabels" .Values.webhook.namespaceSelector.matchLabels -}}
{{- end -}}
{{- toYaml $sel -}}
{{- end -}}

{{/* A label selector as kubectl -l spells it: "component in (jobmanager),team=data". */}}
{{- define "fmw.selectorText" -}}
{{- $parts := list -}}
{{- range $k, $v := (default dict .matchLabels) -}}
{{- $parts = append $parts (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- range (default list .matchExpressions) -}}
{{- if eq .operator "In" -}}{{- $parts = append $parts (printf "%s in (%s)" .key (join "," .values)) -}}
{{- else if eq .operator "NotIn" -}}{{- $parts = append $parts (printf "%s notin (%s)" .key (join "," .values)) -}}
{{- else if eq .operator "Exists" -}}{{- $parts = append $parts .key -}}
{{- else -}}{{- $parts = append $parts (printf "!%s" .key) -}}
{{- end -}}
{{- end -}}
{{- if $parts }}{{ join "," $parts }}{{ else }}(everything){{ end -}}
{{- end -}}

{{/* The roles sized, in the order --roles spells them: "jobmanager,taskmanager". */}}
{{- define "fmw.roles" -}}
{{- $roles := list -}}
{{- range $r := list "jobmanager" "taskmanager" -}}
{{- if has $r $.Values.roles -}}{{- $roles = append $roles $r -}}{{- end -}}
{{- end -}}
{{- join "," $roles -}}
{{- end -}}

{{/*
The label sets of the roles sized, JobManagers' first, as JSON: {"jobmanager": [...],
"taskmanager": [...]} with only the roles listed in .Values.roles.
*/}}
{{- define "fmw.roleLabels" -}}
{{- $out := dict -}}
{{- if has "jobmanager" .Values.roles -}}{{- $_ := set $out "jobmanager" .Values.webhook.jobManagerLabels -}}{{- end -}}
{{- if has "taskmanager" .Values.roles -}}{{- $_ := set $out "taskmanager" .Values.webhook.taskManagerLabels -}}{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The name of the workload condition: jobmanager-template, taskmanager-template, or both. */}}
{{- define "fmw.workloadConditionName" -}}
{{- printf "%s-template" (include "fmw.roles" . | replace "," "-or-") -}}
{{- end -}}

{{/*
The workload condition made from the label sets of the roles sized (webhook.jobManagerLabels,
webhook.taskManagerLabels): the pod template (of a Deployment, StatefulSet, ReplicaSet, Job, or a
CronJob's job) carries one of the label pairs.
*/}}
{{- define "fmw.workloadCondition" -}}
{{- $byRole := include "fmw.roleLabels" . | fromJson -}}
{{- $sets := concat (default list (index $byRole "jobmanager")) (default list (index $byRole "taskmanager")) -}}
{{- $terms := list -}}
{{- range $t := list "object.spec.template" "object.spec.jobTemplate.spec.template" -}}
{{- $pairs := list -}}
{{- range $set := $sets -}}
{{- $all := list -}}
{{- range $k, $v := $set -}}
{{- $all = append $all (printf "'%s' in %s.metadata.labels && %s.metadata.labels['%s'] == '%s'" $k $t $t $k $v) -}}
{{- end -}}
{{- $pairs = append $pairs (printf "(%s)" (join " && " $all)) -}}
{{- end -}}
{{- $has := ternary "has(object.spec.template) && has(object.spec.template.metadata) && has(object.spec.template.metadata.labels)" "has(object.spec.jobTemplate) && has(object.spec.jobTemplate.spec) && has(object.spec.jobTemplate.spec.template) && has(object.spec.jobTemplate.spec.template.metadata) && has(object.spec.jobTemplate.spec.template.metadata.labels)" (eq $t "object.spec.template") -}}
{{- $terms = append $terms (printf "(%s && (%s))" $has (join " || " $pairs)) -}}
{{- end -}}
{{- printf "has(object.spec) && (%s)" (join " || " $terms) -}}
{{- end -}}
