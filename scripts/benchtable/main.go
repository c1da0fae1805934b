// Command benchtable prints issue 17's table of figures from the output of
// make bench: each figure beside the limit this machine sets for it, measured
// in the same run, their ratio, the target and whether it is met.
//
//	go run ./scripts/benchtable bin/bench.out
//	go test -bench ... | go run ./scripts/benchtable -
//
// Figures are found by benchmark name and metric unit as go test -bench prints
// them (table.go lists every one). Idle disk growth and reading-to-seal
// latency are found by unit alone on any line: "<value> MB/day/node" or
// "<value> MB/day per node" (scripts/idle-growth.sh), "<value> seal-p50-ms"
// and "<value> seal-p99-ms" (a benchmark's metrics); the median when several
// lines have one. A figure or limit missing from the output prints "not
// measured". It never fails because of a figure: it exits 0 whatever the
// output holds, and 2 only when it cannot read its input.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtable FILE  (the output of make bench, or - for stdin)")
		os.Exit(2)
	}
	name := os.Args[1]
	var in io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchtable: %v; run make bench to write it\n", err)
			os.Exit(2)
		}
		defer f.Close()
		in = f
	} else {
		name = "stdin"
	}
	res, err := Parse(in, looseUnits)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtable: read %s: %v\n", name, err)
		os.Exit(2)
	}
	Print(os.Stdout, res, name)
}
