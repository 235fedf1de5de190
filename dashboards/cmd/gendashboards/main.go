// Command gendashboards writes the dashboards of package dashboards as
// JSON files into the current directory (run by `go generate ./dashboards`).
package main

import (
	"fmt"
	"os"

	"github.com/siphon-otel/siphon-otel/dashboards"
)

func main() {
	for name, d := range dashboards.All() {
		b, err := d.JSON()
		if err == nil {
			err = os.WriteFile(name, b, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gendashboards:", err)
			os.Exit(1)
		}
	}
}
