package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// docker runs the docker CLI and returns its trimmed output; a failure
// carries what docker printed.
func docker(args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command("docker", args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// endpoint is how a container is attached to a network: the network's name
// and the DNS aliases peers reach it by (compose adds the service name).
type endpoint struct {
	network string
	aliases []string
}

// endpoints reads a container's network attachments.
func endpoints(container string) ([]endpoint, error) {
	out, err := docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", container)
	if err != nil {
		return nil, err
	}
	var nets map[string]struct {
		Aliases []string `json:"Aliases"`
	}
	if err := json.Unmarshal([]byte(out), &nets); err != nil {
		return nil, fmt.Errorf("docker inspect %s: %v", container, err)
	}
	var eps []endpoint
	for name, n := range nets {
		var aliases []string
		for _, a := range n.Aliases {
			// Docker adds the short container ID itself on connect.
			if !isShortID(a) {
				aliases = append(aliases, a)
			}
		}
		eps = append(eps, endpoint{network: name, aliases: aliases})
	}
	return eps, nil
}

func isShortID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// disconnect cuts a container off every network it is on and returns what
// reconnect needs to put it back.
func disconnect(container string) ([]endpoint, error) {
	eps, err := endpoints(container)
	if err != nil {
		return nil, err
	}
	for _, ep := range eps {
		if _, err := docker("network", "disconnect", ep.network, container); err != nil {
			return eps, err
		}
	}
	return eps, nil
}

// reconnect attaches a container again with the aliases it had.
func reconnect(container string, eps []endpoint) error {
	for _, ep := range eps {
		args := []string{"network", "connect"}
		for _, a := range ep.aliases {
			args = append(args, "--alias", a)
		}
		if _, err := docker(append(args, ep.network, container)...); err != nil {
			return err
		}
	}
	return nil
}

// running reports whether the container runs (not paused, not exited).
func running(container string) bool {
	out, err := docker("inspect", "--format", "{{.State.Status}}", container)
	return err == nil && out == "running"
}

// waitRunning waits until docker says the container runs.
func waitRunning(container string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !running(container) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not running after %v", container, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}
