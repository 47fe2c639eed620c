{{/* The operator's objects have fixed names: one operator per namespace, and the generated
roles, the tests' fixtures and the docs all name its ServiceAccount aiops-operator. */}}
{{- define "aiops.name" -}}aiops-operator{{- end -}}

{{- define "aiops.labels" -}}
app.kubernetes.io/name: aiops-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aiops
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "aiops.selectorLabels" -}}
app.kubernetes.io/name: aiops-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The namespaces the operator watches in namespaced mode, as a JSON list (fromJsonArray). */}}
{{- define "aiops.watchedNamespaces" -}}
{{- if eq .Values.watch.mode "cluster" -}}
{{- if .Values.watch.namespaces -}}
{{- fail "watch.namespaces is for watch.mode=namespaced; cluster mode watches every namespace: leave it empty" -}}
{{- end -}}
[]
{{- else if .Values.watch.namespaces -}}
{{- toJson .Values.watch.namespaces -}}
{{- else -}}
{{- list .Release.Namespace | toJson -}}
{{- end -}}
{{- end -}}

{{- define "aiops.serviceAccountUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "aiops.name" . }}
{{- end -}}

{{/* Separation of duties: the operator may read Approvals but never create one. Refuse any
SRE binding that would cover the operator's own ServiceAccount. */}}
{{- define "aiops.checkSre" -}}
{{- $sa := include "aiops.serviceAccountUser" . -}}
{{- range .Values.rbac.sre.users -}}
{{- if eq . $sa -}}
{{- fail (printf "rbac.sre.users must not contain the operator's own ServiceAccount (%s): it would let the operator approve its own actions" $sa) -}}
{{- end -}}
{{- end -}}
{{- $covering := list "system:serviceaccounts" (printf "system:serviceaccounts:%s" .Release.Namespace) "system:authenticated" -}}
{{- range .Values.rbac.sre.groups -}}
{{- if has . $covering -}}
{{- fail (printf "rbac.sre.groups must not contain %s: it includes the operator's own ServiceAccount, which would let the operator approve its own actions" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "aiops.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Several replicas need peering (or each would handle every event) and one audit log they
all write: a volume they share. */}}
{{- define "aiops.checkReplicas" -}}
{{- if gt (int .Values.replicas) 1 -}}
{{- if not .Values.peering.enabled -}}
{{- fail "replicas > 1 needs peering.enabled=true: without it every replica would handle every event" -}}
{{- end -}}
{{- if not .Values.audit.persistence.enabled -}}
{{- fail "replicas > 1 needs audit.persistence.enabled=true: the replicas must share one audit log (a ReadWriteMany volume), and an emptyDir is each pod's own" -}}
{{- end -}}
{{- end -}}
{{- end -}}
