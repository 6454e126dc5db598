//go:build tools

// Keeps the two main packages we build in go.mod's requirement graph.
package tools

import (
	_ "github.com/projectcalico/calico/apiserver/cmd/apiserver"
	_ "github.com/projectcalico/calico/felix/cmd/calico-felix"
)
