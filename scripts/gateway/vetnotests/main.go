// Command vetnotests is a go vet -vettool that runs the real vet on a package's
// non-test files only. scripts/gateway/vet-deps.sh uses it to vet the dependencies for
// 32-bit targets: go vet always checks a package together with its _test.go files,
// and some dependencies' tests do not type-check on 32-bit (constants that overflow
// int in go-cidranger's and ristretto's tests), which would stop vet before it looks
// at the package code the gateway runs, and would pull the dependencies' test-only
// modules into the build.
//
// It finds the real vet through $VETNOTESTS_VET (the path of $(go env GOTOOLDIR)/vet).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

func main() {
	vet := os.Getenv("VETNOTESTS_VET")
	if vet == "" {
		fail("set VETNOTESTS_VET to the real vet: $(go env GOTOOLDIR)/vet")
	}
	args := os.Args[1:]
	if len(args) > 0 && strings.HasSuffix(args[len(args)-1], ".cfg") {
		keep, err := dropTests(args[len(args)-1])
		if err != nil {
			fail(err.Error())
		}
		if !keep {
			return // an external test package: nothing but tests
		}
	}
	cmd := exec.Command(vet, args...)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	out, err := cmd.Output()
	if len(args) == 1 && args[0] == "-V=full" {
		// go caches vet results by this line: keep ours apart from plain vet's, whose
		// results include the test files.
		out = []byte(strings.TrimRight(string(out), "\n") + " vetnotests\n")
	}
	os.Stdout.Write(out)
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	} else if err != nil {
		fail(err.Error())
	}
}

// dropTests rewrites the vet config at path without its _test.go files, and reports
// whether any file is left.
func dropTests(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(b, &cfg); err != nil {
		return false, fmt.Errorf("%s: %v", path, err)
	}
	var files []string
	if err := json.Unmarshal(cfg["GoFiles"], &files); err != nil {
		return false, fmt.Errorf("%s: GoFiles: %v", path, err)
	}
	var kept []string
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			kept = append(kept, f)
		}
	}
	if len(kept) == len(files) {
		return len(kept) > 0, nil
	}
	if cfg["GoFiles"], err = json.Marshal(kept); err != nil {
		return false, err
	}
	if b, err = json.MarshalIndent(cfg, "", "\t"); err != nil {
		return false, err
	}
	return len(kept) > 0, os.WriteFile(path, b, 0o644)
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "vetnotests: "+msg)
	os.Exit(2)
}
