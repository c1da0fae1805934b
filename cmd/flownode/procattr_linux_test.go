package main

import "syscall"

// childAttr makes a node process die with the test binary that started it:
// a test binary killed by a timeout or by hand must not leave nodes running
// (they would load the machine for the tests that follow).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
