{{/* A sink name (receiver/<name>, channel/<name>, inmemorychannel/<name>, kafkachannel/<name>, broker/<name>) or URL as a Knative Destination: channel/ is Knative's generic Channel; a channel a chart of the runner renders is named by its own kind. */}}
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
{{- else if eq $kind "inmemorychannel" }}
  apiVersion: messaging.knative.dev/v1
  kind: InMemoryChannel
{{- else if eq $kind "kafkachannel" }}
  apiVersion: messaging.knative.dev/v1beta1
  kind: KafkaChannel
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

{{/* Kafka bootstrap servers (host:port, comma-separated) as the Knative data planes in knative-eventing resolve them: a host without a domain is taken in the release's namespace. Give a dict of servers and namespace. */}}
{{- define "knative-lib.bootstrap" -}}
{{- $ns := .namespace -}}
{{- $out := list -}}
{{- range splitList "," .servers -}}
{{- $hp := splitList ":" (trim .) -}}
{{- if contains "." (index $hp 0) -}}
{{- $out = append $out (trim .) -}}
{{- else -}}
{{- $out = append $out (printf "%s.%s.svc.cluster.local:%s" (index $hp 0) $ns (index $hp 1)) -}}
{{- end -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}
