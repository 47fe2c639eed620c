{{- define "ratelimiter.name" -}}{{ .Release.Name }}-ratelimiter{{- end -}}
{{- define "ratelimiter.peer" -}}{{ .Release.Name }}-ratelimiter-peer{{- end -}}
{{- define "ratelimiter.redis" -}}{{ .Release.Name }}-redis{{- end -}}
{{- define "ratelimiter.toxiproxy" -}}{{ .Release.Name }}-toxiproxy{{- end -}}

{{- define "ratelimiter.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ratelimiter
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{/* Where the nodes find Redis: through toxiproxy when it is enabled. */}}
{{- define "ratelimiter.redisUrl" -}}
{{- if .Values.toxiproxy.enabled -}}
redis://{{ include "ratelimiter.toxiproxy" . }}:{{ .Values.toxiproxy.listenPort }}/0
{{- else -}}
redis://{{ include "ratelimiter.redis" . }}:{{ .Values.redis.port }}/0
{{- end -}}
{{- end -}}
