{{/* A sink name (receiver/<name>, channel/<name>, broker/<name>) or URL as a Knative Destination. */}}
{{- define "knative-lib.destination" -}}
{{- if regexMatch "^https?://" . -}}
uri: {{ . | quote }}
{{- else -}}
{{- $kind := index (splitList "/" .) 0 -}}
{{- $name := index (splitList "/" .) 1 -}}
ref:
{{- if eq $kind "receiver" }}
  apiVersion: v1
  kind: Service
{{- else if eq $kind "channel" }}
  apiVersion: messaging.knative.dev/v1
  kind: Channel
{{- else if eq $kind "broker" }}
  apiVersion: eventing.knative.dev/v1
  kind: Broker
{{- end }}
  name: {{ $name }}
{{- end -}}
{{- end -}}

{{/* spec.delivery from .Values.delivery. */}}
{{- define "knative-lib.delivery" -}}
delivery:
  retry: {{ .retry }}
  backoffPolicy: {{ .backoffPolicy }}
  backoffDelay: {{ .backoffDelay }}
  {{- if .timeout }}
  timeout: {{ .timeout }}
  {{- end }}
  {{- if .deadLetterSink }}
  deadLetterSink:
    {{- include "knative-lib.destination" .deadLetterSink | nindent 4 }}
  {{- end }}
{{- end -}}
