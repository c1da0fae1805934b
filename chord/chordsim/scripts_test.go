package chordsim

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected outputs in testdata from seed 1")

// defaultScriptSeeds is how many seeds a script runs with unless it says
// "seeds N" first.
const defaultScriptSeeds = 4

// TestScripts runs every scenario in testdata with several seeds; the output
// of each command must match the script for every seed.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			t.Parallel()
			text, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cases, err := ParseScript(string(text))
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			seeds := defaultScriptSeeds
			if len(cases) > 0 && cases[0].Cmd.Name == "seeds" && len(cases[0].Cmd.Args) == 1 {
				seeds, _ = strconv.Atoi(cases[0].Cmd.Args[0])
			}
			for seed := uint64(1); seed <= uint64(seeds); seed++ {
				if !runScript(t, file, cases, seed) {
					return
				}
			}
		})
	}
}

func runScript(t *testing.T, file string, cases []Case, seed uint64) bool {
	t.Helper()
	opt := Options{Seed: seed}
	s := New(opt)
	outs := make([]string, len(cases))
	for i, c := range cases {
		out, _ := s.Exec(c.Cmd)
		outs[i] = out
		if *rewrite {
			continue
		}
		if out != c.Expected {
			var sc Script
			for _, c := range cases {
				sc = append(sc, c.Cmd)
			}
			t.Errorf("%s:%d seed %d: %s\ngot:\n%s\nwant:\n%s\n\n%s%s", file, c.Line, seed, c.Cmd, out, c.Expected, s.Report(), shrinkReport(sc, opt))
			return false
		}
	}
	if *rewrite && seed == 1 {
		if err := os.WriteFile(file, []byte(FormatScript(cases, outs)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return true
}

// shrinkReport shrinks a script that ends in a violation and prints the
// shortest failing version found.
func shrinkReport(sc Script, opt Options) string {
	s, _ := sc.Run(opt)
	if s.Violation() == nil {
		return ""
	}
	want := s.Violation().Invariant
	fails := func(s *Sim) bool { return s.Violation() != nil && s.Violation().Invariant == want }
	small := Shrink(sc, opt, fails, 200)
	return fmt.Sprintf("\nshortest failing script found (seed %d, %d of %d commands):\n%s", opt.Seed, len(small), len(sc), small)
}
