{{/*
The two CRD hooks of upstream's chart, with its names, events and weights: "upgrade-crds" applies the
CRDs before every install and upgrade (Helm itself installs crds/ once and never upgrades them), and
"keep-crds" marks them helm.sh/resource-policy=keep before every upgrade, so that no release change
deletes them (and with them every SecretProviderClass). Each hook is a ServiceAccount allowed just
that, and a Job running kubectl (linux.crds.image) under it.
*/}}

{{/* Annotations of a hook object. Called with (dict "events" E "weight" W). */}}
{{- define "sscsi.hookAnnotations" -}}
helm.sh/hook: {{ .events }}
helm.sh/hook-delete-policy: hook-succeeded,before-hook-creation
helm.sh/hook-weight: {{ .weight | quote }}
{{- end -}}

{{/*
A hook's ServiceAccount, ClusterRole and binding, named <fullname>-<suffix>.
Called with (dict "root" $ "suffix" S "events" E "accountWeight" W "verbs" V).
*/}}
{{- define "sscsi.hookAccount" -}}
{{- $name := printf "%s-%s" (include "sscsi.fullname" .root) .suffix -}}
{{- $annotations := include "sscsi.hookAnnotations" (dict "events" .events "weight" .accountWeight) -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "sscsi.labels" .root | nindent 4 }}
  annotations:
    {{- $annotations | nindent 4 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ $name }}
  labels:
    {{- include "sscsi.labels" .root | nindent 4 }}
  annotations:
    {{- $annotations | nindent 4 }}
rules:
  - apiGroups: [apiextensions.k8s.io]
    resources: [customresourcedefinitions]
    verbs: {{ toJson .verbs }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ $name }}
  labels:
    {{- include "sscsi.labels" .root | nindent 4 }}
  annotations:
    {{- $annotations | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ .root.Release.Namespace }}
{{- end -}}

{{/*
A hook's Job, named secrets-store-csi-driver-<suffix> (upstream's fixed name), running kubectl with
`args` under the ServiceAccount <fullname>-<suffix>; `configMap`, when given, is mounted at /chart-crds.
Called with (dict "root" $ "suffix" S "events" E "weight" W "container" C "args" A ["configMap" M]).
*/}}
{{- define "sscsi.hookJob" -}}
{{- $crds := .root.Values.linux.crds -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: secrets-store-csi-driver-{{ .suffix }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "sscsi.labels" .root | nindent 4 }}
  annotations:
    {{- include "sscsi.hookAnnotations" (dict "events" .events "weight" .weight) | nindent 4 }}
spec:
  backoffLimit: 3
  template:
    metadata:
      name: {{ include "sscsi.fullname" .root }}-{{ .suffix }}
      {{- with $crds.annotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $crds.podLabels }}
      labels:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "sscsi.fullname" .root }}-{{ .suffix }}
      {{- with .root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      restartPolicy: Never
      containers:
        - name: {{ .container }}
          image: {{ include "sscsi.image" $crds.image | quote }}
          imagePullPolicy: {{ $crds.image.pullPolicy }}
          args: {{ toJson .args }}
          {{- with $crds.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- if .configMap }}
          volumeMounts:
            - name: crds
              mountPath: /chart-crds
              readOnly: true
          {{- end }}
      {{- if .configMap }}
      volumes:
        - name: crds
          configMap:
            name: {{ .configMap }}
      {{- end }}
      nodeSelector:
        {{- toYaml (merge (dict "kubernetes.io/os" "linux") (.root.Values.linux.nodeSelector | default dict)) | nindent 8 }}
      {{- with .root.Values.linux.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
