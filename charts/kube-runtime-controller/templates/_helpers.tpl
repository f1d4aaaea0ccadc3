{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "krc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name for every object of this release. */}}
{{- define "krc.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "krc.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "krc.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "krc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "krc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "krc.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "krc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "krc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "krc.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "krc.leaseName" -}}
{{- default (printf "%s-leader" (include "krc.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "krc.metricsSecretName" -}}
{{- if .Values.metrics.tls.certManager.enabled }}
{{- printf "%s-metrics-tls" (include "krc.fullname" .) }}
{{- else }}
{{- .Values.metrics.tls.secretName }}
{{- end }}
{{- end }}

{{/* The ring of a sharded deployment. */}}
{{- define "krc.ring" -}}
{{- default (include "krc.fullname" .) .Values.sharding.ring }}
{{- end }}

{{/* Refuse value combinations that would deploy something broken. */}}
{{- define "krc.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) (not .Values.sharding.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true or sharding.enabled=true: replicas without a lease reconcile the same objects concurrently" }}
{{- end }}
{{- if and .Values.leaderElection.enabled .Values.sharding.enabled }}
{{- fail "sharding.enabled and leaderElection.enabled exclude each other: a sharded replica holds its own member Lease instead of one leader Lease" }}
{{- end }}
{{- if gt (len (include "krc.ring" .)) 63 }}
{{- fail (printf "sharding.ring %q is longer than 63 characters (it is part of the shard label key)" (include "krc.ring" .)) }}
{{- end }}
{{- if and .Values.metrics.secure (not (include "krc.metricsSecretName" .)) }}
{{- fail "metrics.secure=true needs a serving certificate: set metrics.tls.secretName or metrics.tls.certManager.enabled=true (bearer tokens must not cross the network in clear text)" }}
{{- end }}
{{- if ge (float64 .Values.controller.gracefulShutdownTimeout) (float64 .Values.terminationGracePeriodSeconds) }}
{{- fail (printf "controller.gracefulShutdownTimeout (%v) must be below terminationGracePeriodSeconds (%v): the kubelet kills the pod at the end of the grace period" .Values.controller.gracefulShutdownTimeout .Values.terminationGracePeriodSeconds) }}
{{- end }}
{{- if and .Values.webhooks.enabled (not (include "krc.webhookSecretName" .)) }}
{{- fail "webhooks.enabled=true needs a serving certificate: set webhooks.tls.secretName (and caBundle) or webhooks.tls.certManager.enabled=true (the API server only calls webhooks over TLS)" }}
{{- end }}
{{- if and .Values.webhooks.enabled .Values.webhooks.tls.secretName (not .Values.webhooks.tls.certManager.enabled) (not .Values.webhooks.tls.caBundle) }}
{{- fail "webhooks.tls.secretName needs webhooks.tls.caBundle: the API server verifies the serving certificate with it" }}
{{- end }}
{{- if not (has .Values.logging.format (list "json" "console")) }}
{{- fail (printf "logging.format must be json or console, got %q" .Values.logging.format) }}
{{- end }}
{{- end }}

{{- define "krc.webhookSecretName" -}}
{{- if .Values.webhooks.tls.certManager.enabled }}
{{- printf "%s-webhook-tls" (include "krc.fullname" .) }}
{{- else }}
{{- .Values.webhooks.tls.secretName }}
{{- end }}
{{- end }}

{{/* Whether this release creates its own self-signed cert-manager Issuer (metrics or webhooks). */}}
{{- define "krc.selfSignedIssuer" -}}
{{- $metrics := and .Values.metrics.secure .Values.metrics.tls.certManager.enabled (not .Values.metrics.tls.certManager.issuerRef) }}
{{- $webhooks := and .Values.webhooks.enabled .Values.webhooks.tls.certManager.enabled (not .Values.webhooks.tls.certManager.issuerRef) }}
{{- if or $metrics $webhooks }}true{{ end }}
{{- end }}
