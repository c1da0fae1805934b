//go:build !linux

package main

import "syscall"

// childAttr: only Linux can tie a child's life to its parent's.
func childAttr() *syscall.SysProcAttr { return nil }

// groupAttr: process groups are Linux's here.
func groupAttr() *syscall.SysProcAttr { return nil }

// killGroup: nothing beyond the child itself, which exec kills.
func killGroup(pid int) {}
