package homerexporter

import "syscall"

func errConnRefused() error { return syscall.ECONNREFUSED }
