// Pins the Calico release whose CRDs (libcalico-go/config/crd/) the local
// control plane installs. Calico tags (v3.x) are not valid Go module versions
// for this module path, so the release commit is pinned as a pseudo-version:
// v3.31.0 = b1f3c43f8437.
module policy-reconciler.io/tools/calico

go 1.24.0

require github.com/projectcalico/calico v0.0.0-20251021213802-b1f3c43f8437
