package main

import "syscall"

// childAttr makes a node process die with the test binary that started it:
// a test binary killed by a timeout or by hand must not leave nodes running
// (they would load the machine for the tests that follow).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// groupAttr starts a child in a process group of its own, dying with the test
// binary: killGroup then reaches the processes it spawned too (Chromium's
// renderers and helpers, which write to its profile after it is gone).
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// killGroup kills the process group of a child started with groupAttr.
func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }
