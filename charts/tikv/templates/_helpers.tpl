{{/* Names of the peer (headless) Services: the stable DNS of each StatefulSet pod. */}}
{{- define "tikv.pdPeer" -}}{{ .Release.Name }}-pd-peer{{- end -}}
{{- define "tikv.pdClient" -}}{{ .Release.Name }}-pd{{- end -}}
{{- define "tikv.tikvPeer" -}}{{ .Release.Name }}-tikv-peer{{- end -}}

{{- define "tikv.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tikv
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{/* The data volume of a StatefulSet: a claim template when storage.size is set. */}}
{{- define "tikv.volumeClaim" -}}
{{- if .root.Values.storage.size }}
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: [ReadWriteOnce]
        {{- with .root.Values.storage.storageClassName }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ .root.Values.storage.size }}
{{- end }}
{{- end -}}

{{- define "tikv.emptyDir" -}}
{{- if not .Values.storage.size }}
      volumes:
        - name: data
          emptyDir: {}
{{- end }}
{{- end -}}
