"""kube-runtime: an asyncio controller runtime for Kubernetes."""
