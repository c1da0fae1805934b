package main

import (
	"bufio"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// A source names one figure in the output of make bench: a benchmark, by its
// full name as `go test -bench` prints it without the -GOMAXPROCS suffix
// ("BenchmarkIngest/batch=500/clients=4"), and the unit of one of its metrics
// ("rec/s"). A source with an empty bench is matched by its unit alone, on any
// line (see Results.byUnit): scripts that are not Go benchmarks print their
// figure as "<value> <unit>".
type source struct{ bench, unit string }

// Results are the figures found in one run's output.
type Results struct {
	byName map[source][]float64 // benchmark result lines, by name and unit
	byUnit map[string][]float64 // "<value> <unit>" anywhere, for the units asked for
}

// value is the median of the figures found for s, or false when there are none.
// A benchmark run more than once (-count, -cpu) has several.
func (r *Results) value(s source) (float64, bool) {
	vs := r.byName[s]
	if s.bench == "" {
		vs = r.byUnit[s.unit]
	}
	return median(vs)
}

func median(vs []float64) (float64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Sorted(slices.Values(vs))
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m], true
	}
	return (s[m-1] + s[m]) / 2, true
}

// procsSuffix is the "-N" that go test appends to a benchmark's name when
// GOMAXPROCS is N > 1.
var procsSuffix = regexp.MustCompile(`-[0-9]+$`)

// Parse reads the output of `go test -bench` runs (and of anything else make
// bench prints) and collects every benchmark result line, and every
// "<value> <unit>" pair whose unit is one of looseUnits. Lines it does not
// understand are skipped: the output is full of logs.
//
// A result line is "BenchmarkName-N <iterations> <value> <unit> ...". When a
// benchmark writes to stdout or stderr while it runs (a child process, a
// library's logger), go test has already printed the name, so the figures
// arrive on a later line of their own: Parse keeps the last name that came
// without figures and gives it the next line that is nothing but figures.
func Parse(r io.Reader, looseUnits []string) (*Results, error) {
	res := &Results{byName: map[source][]float64{}, byUnit: map[string][]float64{}}
	pending := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		res.addLoose(fields, looseUnits)
		switch {
		case len(fields) > 0 && strings.HasPrefix(fields[0], "Benchmark"):
			name := procsSuffix.ReplaceAllString(fields[0], "")
			pending = ""
			if !res.addResult(name, fields[1:]) {
				pending = name
			}
		case len(fields) > 0 && endsBenchmark(fields[0]):
			pending = ""
		case pending != "":
			if res.addResult(pending, fields) {
				pending = ""
			}
		}
	}
	return res, sc.Err()
}

// endsBenchmark reports whether a line starting with first ends the running
// benchmark without figures (--- SKIP, --- FAIL) or its package (PASS, ok).
func endsBenchmark(first string) bool {
	return first == "---" || first == "PASS" || first == "FAIL" || first == "ok"
}

// addResult records "<iterations> <value> <unit> ..." as name's figures and
// reports whether fields had that form.
func (r *Results) addResult(name string, fields []string) bool {
	if len(fields) < 3 || len(fields)%2 == 0 {
		return false
	}
	if _, err := strconv.ParseUint(fields[0], 10, 64); err != nil {
		return false
	}
	values := make([]float64, 0, len(fields)/2)
	for i := 1; i < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return false
		}
		values = append(values, v)
	}
	for i, v := range values {
		s := source{name, fields[2+2*i]}
		r.byName[s] = append(r.byName[s], v)
	}
	return true
}

// unitAliases are the ways a loose unit is also written, word by word:
// scripts/idle-growth.sh prints "mean growth: 0.42 MB/day per node (...)".
var unitAliases = map[string][]string{
	"MB/day/node": {"MB/day", "per", "node"},
}

// addLoose records every number directly followed by one of units (or by one
// of its aliases).
func (r *Results) addLoose(fields, units []string) {
	for i := 1; i < len(fields); i++ {
		for _, u := range units {
			if !startsWithUnit(fields[i:], u) {
				continue
			}
			if v, err := strconv.ParseFloat(fields[i-1], 64); err == nil {
				r.byUnit[u] = append(r.byUnit[u], v)
			}
		}
	}
}

func startsWithUnit(fields []string, unit string) bool {
	if fields[0] == unit {
		return true
	}
	alias := unitAliases[unit]
	return len(alias) > 0 && len(fields) >= len(alias) && slices.Equal(fields[:len(alias)], alias)
}
