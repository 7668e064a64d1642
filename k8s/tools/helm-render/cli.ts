// `npm run chart:render -- --release alpha -f values.yaml --set domain=alpha.example`: prints the
// chart's manifests like `helm template` (helm when on PATH, else helm-render built from main.go).
import { renderCli } from "@phoenix/test-harness/kube";

process.exitCode = await renderCli(process.argv.slice(2));
