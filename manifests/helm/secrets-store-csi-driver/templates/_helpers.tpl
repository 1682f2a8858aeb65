{{/*
Names and labels follow upstream's chart exactly: the same release gets the same object names and the
DaemonSet the same (immutable) selector, which is what lets `helm upgrade` replace upstream in place.
*/}}

{{/* The chart's short name: `app` label and selector. */}}
{{- define "sscsi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The DaemonSet's and the hooks' name: the release name, unless it lacks the chart's name. */}}
{{- define "sscsi.fullname" -}}
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

{{/* Labels of every object (and of the driver's pods). */}}
{{- define "sscsi.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/name: {{ include "sscsi.name" . | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app: {{ include "sscsi.name" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name (.Chart.Version | replace "+" "_") | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "sscsi.image" -}}
{{- if .digest -}}
{{ .repository }}@{{ .digest }}
{{- else -}}
{{ .repository }}:{{ .tag }}
{{- end -}}
{{- end -}}

{{/*
The driver's image. Upstream's Go driver image means this chart's own: `helm upgrade --reuse-values`
from an upstream release hands the templates upstream's defaults in place of values.yaml.
*/}}
{{- define "sscsi.driverImage" -}}
{{- $image := .Values.linux.image -}}
{{- if or (not $image.repository) (eq $image.repository "registry.k8s.io/csi-secrets-store/driver") -}}
{{- $image = dict "repository" "localhost/secrets-store-csi" "tag" (printf "v%s" .Chart.AppVersion) -}}
{{- end -}}
{{- include "sscsi.image" $image -}}
{{- end -}}

{{/*
A memory quantity (200Mi, 1Gi, 500M, 268435456) in whole MiB; `what` names the value in the error.
Called with (dict "quantity" Q "what" NAME).
*/}}
{{- define "sscsi.mebibytes" -}}
{{- $q := .quantity -}}
{{- if or (kindIs "float64" $q) (kindIs "int64" $q) (kindIs "int" $q) -}}
{{- $q = printf "%d" (int64 $q) -}}
{{- end -}}
{{- $q = toString $q -}}
{{- if not (regexMatch "^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$" $q) -}}
{{- fail (printf "%s must be a whole memory quantity such as 200Mi or 1Gi, not %q." .what $q) -}}
{{- end -}}
{{- $units := dict "" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 -}}
{{- $number := regexReplaceAll "[A-Za-z]+$" $q "" | int64 -}}
{{- $unit := regexReplaceAll "^[0-9]+" $q "" -}}
{{- div (mul $number (get $units $unit)) 1048576 -}}
{{- end -}}

{{/*
V8's old-space ceiling in MiB: the driver container's memory limit minus nonHeapMemory; empty without
a memory limit.
*/}}
{{- define "sscsi.maxOldSpaceSize" -}}
{{- $limit := dig "resources" "limits" "memory" "" .Values.linux.driver -}}
{{- if $limit -}}
{{- $reserve := dig "nonHeapMemory" "72Mi" .Values.linux.driver -}}
{{- $limitMiB := include "sscsi.mebibytes" (dict "quantity" $limit "what" "linux.driver.resources.limits.memory") | int64 -}}
{{- $reserveMiB := include "sscsi.mebibytes" (dict "quantity" $reserve "what" "linux.driver.nonHeapMemory") | int64 -}}
{{- if le $limitMiB $reserveMiB -}}
{{- fail (printf "linux.driver.resources.limits.memory (%s) leaves no room for V8's heap after linux.driver.nonHeapMemory (%s): raise the limit or lower nonHeapMemory." (toString $limit) (toString $reserve)) -}}
{{- end -}}
{{- sub $limitMiB $reserveMiB -}}
{{- end -}}
{{- end -}}

{{/* The port number at the end of an address such as :8095 or 0.0.0.0:8095; empty for "0" (off). */}}
{{- define "sscsi.port" -}}
{{- $port := regexFind "[0-9]+$" (toString .) -}}
{{- if and $port (ne $port "0") -}}
{{ $port }}
{{- end -}}
{{- end -}}
