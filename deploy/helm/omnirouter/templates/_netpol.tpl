{{/* Egress every pod of the release needs: DNS and PostgreSQL. Context: root. */}}
{{- define "omnirouter.egressDnsAndDatabase" -}}
- to:
    - namespaceSelector:
        {{- toYaml .Values.networkPolicy.dns.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml .Values.networkPolicy.dns.podSelector | nindent 8 }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
- {{- with .Values.database.networkPolicyPeers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - {port: {{ .Values.database.port }}, protocol: TCP}
{{- end -}}
