package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"strings"
)

// newFlags makes a flag set for a subcommand whose errors come back as usage errors.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("flownode "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// envName is the environment variable that sets a flag: FLOWNODE_ plus the flag's
// name in upper case with '-' as '_'.
func envName(flagName string) string {
	return "FLOWNODE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags applies FLOWNODE_* variables, then the command line (which wins), and
// returns the positional arguments. Flags may come before or after positionals.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = usageErr("%s=%q: %v", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(os.Stderr)
				fs.PrintDefaults()
				return nil, &exitError{code: exitOK}
			}
			return nil, usageErr("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// wantArgs checks the number of positional arguments.
func wantArgs(args []string, n int, what string) error {
	if len(args) != n {
		return usageErr("want %s, got %d argument(s)", what, len(args))
	}
	return nil
}
