//go:build !linux

package metrics

func residentBytes() float64 { return 0 }
