// Command hello is the main package TestGoBuild builds.
package main

import "fmt"

func main() { fmt.Println("hello from a built binary") }
