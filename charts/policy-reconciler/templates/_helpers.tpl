{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "policy-reconciler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, with the chart name unless the release name contains it. */}}
{{- define "policy-reconciler.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Cluster-scoped objects also carry the namespace: two releases of one name never clash. */}}
{{- define "policy-reconciler.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "policy-reconciler.fullname" .) | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "policy-reconciler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "policy-reconciler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "policy-reconciler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "policy-reconciler.labels" -}}
helm.sh/chart: {{ include "policy-reconciler.chart" . }}
{{ include "policy-reconciler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "policy-reconciler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "policy-reconciler.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "policy-reconciler.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when the controller must run leader election: asked for, or more than one replica. */}}
{{- define "policy-reconciler.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/* The Lease the controller takes: it always names it after its ApplySet. */}}
{{- define "policy-reconciler.leaseName" -}}
{{- printf "%s-leader" .Values.applySet.name }}
{{- end }}

{{- define "policy-reconciler.statusName" -}}
{{- printf "%s-status" .Values.applySet.name }}
{{- end }}

{{/* Where each referenced Secret is mounted (read-only). */}}
{{- define "policy-reconciler.secretsDir" -}}/etc/policy-reconciler{{- end }}

{{/* The one git ref flag, refusing more than one. */}}
{{- define "policy-reconciler.refArgs" -}}
{{- $refs := dict }}
{{- range $flag := list "branch" "tag" "commit" }}
{{- with (get $.Values.git $flag) }}{{ $_ := set $refs $flag . }}{{ end }}
{{- end }}
{{- if gt (len $refs) 1 }}
{{- fail (printf "git: set at most one of branch, tag and commit (got %s)" (keys $refs | sortAlpha | join ", ")) }}
{{- end }}
{{- range $flag, $value := $refs }}
- --{{ $flag }}
- {{ $value | quote }}
{{- end }}
{{- end }}

{{/* Checks across values that the JSON schema cannot express clearly. */}}
{{- define "policy-reconciler.validate" -}}
{{- $ssh := .Values.git.auth.ssh }}
{{- if and $ssh.existingSecret (not $ssh.knownHostsKey) }}
{{- fail "git.auth.ssh.knownHostsKey is required with an SSH key: the host key must be pinned" }}
{{- end }}
{{- $verify := .Values.git.verifySignatures }}
{{- if and $verify.mode (not $verify.existingSecret) }}
{{- fail "git.verifySignatures.existingSecret is required when git.verifySignatures.mode is set" }}
{{- end }}
{{- if and .Values.webhook.enabled (not .Values.webhook.secret.existingSecret) }}
{{- fail "webhook.secret.existingSecret is required with webhook.enabled: payloads must be signed" }}
{{- end }}
{{- if and (not .Values.webhook.enabled) .Values.webhook.ingress.enabled }}
{{- fail "webhook.ingress.enabled needs webhook.enabled" }}
{{- end }}
{{- end }}
