// Command gendeploy writes deploy/kubernetes/generated-*.yaml (see package
// deploy). Run it through `go generate ./deploy/...` or `make generate`.
package main

import (
	"log"
	"os"
	"path/filepath"

	"github.com/siphon-otel/siphon-otel/deploy"
)

func main() {
	// go generate runs in deploy/
	root, err := filepath.Abs("..")
	if err != nil {
		log.Fatal(err)
	}
	files, err := deploy.Generate(root)
	if err != nil {
		log.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(root, "deploy", "kubernetes", name), b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
