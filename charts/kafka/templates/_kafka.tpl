{{/* The replication of Kafka's internal topics: 3, or every broker when there are fewer. */}}
{{- define "kafka.replication" -}}
{{- min 3 (int .Values.brokers) -}}
{{- end -}}

{{/* A host the Knative data planes in other namespaces resolve: one without a domain gets the release's namespace. */}}
{{- define "kafka.qualify" -}}
{{- $host := index (splitList ":" .host) 0 -}}
{{- $port := index (splitList ":" .host) 1 -}}
{{- if contains "." $host -}}{{ .host }}{{- else -}}{{ $host }}.{{ .namespace }}.svc.cluster.local:{{ $port }}{{- end -}}
{{- end -}}

{{/* An ISO 8601 duration (PT20S, PT0.5S, PT10M, P1D, P1DT12H) in milliseconds. */}}
{{- define "kafka.millis" -}}
{{- $d := upper . -}}
{{- if not (regexMatch "^P([0-9.]+D)?(T([0-9.]+H)?([0-9.]+M)?([0-9.]+S)?)?$" $d) -}}
{{- fail (printf "retention %q is not an ISO 8601 duration such as PT20S, PT10M or P1D" .) -}}
{{- end -}}
{{- $days := regexFind "[0-9.]+D" $d | trimSuffix "D" | default "0" | float64 -}}
{{- $time := regexFind "T.*$" $d -}}
{{- $hours := regexFind "[0-9.]+H" $time | trimSuffix "H" | default "0" | float64 -}}
{{- $minutes := regexFind "[0-9.]+M" $time | trimSuffix "M" | default "0" | float64 -}}
{{- $seconds := regexFind "[0-9.]+S" $time | trimSuffix "S" | default "0" | float64 -}}
{{- addf (mulf $days 86400000) (mulf $hours 3600000) (mulf $minutes 60000) (mulf $seconds 1000) | floor | int64 -}}
{{- end -}}
