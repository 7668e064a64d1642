{{/* Pieces of the NetworkPolicies (networkpolicies.yaml). */}}

{{- define "phoenix.np.pods" -}}
- podSelector:
    matchLabels:
      {{- include "phoenix.selectorLabels" . | trim | nindent 6 }}
{{- end }}

{{- define "phoenix.np.dns" -}}
- to:
    {{- toYaml .Values.networkPolicy.dns | nindent 4 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}

{{- define "phoenix.np.database" -}}
{{- if .Values.postgresql.enabled }}
- to:
    {{- include "phoenix.np.pods" (dict "root" . "component" "postgresql") | trim | nindent 4 }}
  ports:
    - port: 5432
      protocol: TCP
{{- else }}
- ports:
    - port: {{ int .Values.externalDatabase.port }}
      protocol: TCP
  {{- with .Values.networkPolicy.databaseCidrs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "phoenix.np.nats" -}}
{{- if .Values.nats.enabled }}
- to:
    {{- include "phoenix.np.pods" (dict "root" . "component" "nats") | trim | nindent 4 }}
  ports:
    - port: 4222
      protocol: TCP
{{- else }}
- ports:
    {{- range .Values.networkPolicy.natsPorts }}
    - port: {{ int . }}
      protocol: TCP
    {{- end }}
  {{- with .Values.networkPolicy.natsCidrs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "phoenix.np.metrics" -}}
- ports:
    - port: metrics
      protocol: TCP
  {{- with .Values.networkPolicy.metricsFrom }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{- define "phoenix.np.header" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "phoenix.fullname" .root }}-{{ .component }}
  labels:
    {{- include "phoenix.labels" (dict "root" .root "component" .component) | trim | nindent 4 }}
  {{- with include "phoenix.annotations" (dict "root" .root) }}
  annotations:
    {{- . | nindent 4 }}
  {{- end }}
spec:
  podSelector:
    matchLabels:
      {{- include "phoenix.selectorLabels" (dict "root" .root "component" .component) | trim | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
{{- end }}
