// @phoenix/test-harness/kube: the Helm chart rendered, validated and linted without a cluster,
// and a Kubernetes namespace reproduced on podman for the helm-based tests.
export * from "./lint.js";
export * from "./objects.js";
export * from "./podman.js";
export * from "./podman-cluster.js";
export * from "./render.js";
export * from "./validate.js";
