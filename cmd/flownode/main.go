// Command flownode runs a flownode and talks to running ones.
//
//	flownode run      [--data DIR] [--http ADDR] [--profile gateway|laptop|local] [--network NAME] ...
//	flownode put      [--node URL] [--thing ID] [--key HEX] JSON
//	flownode get      [--node URL] TXID
//	flownode status   [--node URL]
//	flownode ring     [--node URL]
//	flownode verify   [--node URL | --data DIR]
//	flownode keygen | healthcheck | version
//	flownode device   keygen --out FILE | sign --key FILE --thing ID [--envelope] JSON | verify --pub HEX [RECORD]
//
//	flownode network init --dir DIR [--network NAME] [--profile laptop|gateway|local]
//	flownode admit    --network DIR --data NODEDIR [--expires DUR]
//	flownode revoke   --network DIR [--node URL] [--reason TEXT] NODEID
//	flownode token    create --network DIR --thing PATTERN --scope read|write|admin [--expires DUR] [--quiet]
//	flownode token    list --network DIR
//	flownode token    revoke --network DIR [--node URL] [--reason TEXT] TOKENID
//
// network init creates a network's authority (DIR/authority.key, to be kept offline,
// and DIR/network.json); admit signs a node's membership into its data directory;
// revoke signs a revocation, keeps it in DIR/revocations/ and hands it to a member,
// which spreads it round the ring. token create signs a credential for devices and
// clients (a bearer token, and a PSK identity and key for CoAP over DTLS), valid on every
// node; token revoke revokes one the same way.
//
// Every flag can also be set with an environment variable FLOWNODE_<FLAG>, for example
// FLOWNODE_DATA=/var/lib/flownode. Exit codes: 0 success, 1 a negative answer (verify
// found tampering, get found nothing, healthcheck failed), 2 usage or connection errors.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Exit codes of every subcommand.
const (
	exitOK       = 0
	exitNegative = 1
	exitUsage    = 2
)

// exitError carries an exit code and one line for stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErr(format string, a ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, a...)}
}

func negative(format string, a ...any) error {
	return &exitError{code: exitNegative, msg: fmt.Sprintf(format, a...)}
}

type command struct {
	name    string
	summary string
	run     func(args []string, stdout io.Writer) error
}

var commands = []command{
	{"run", "run a node", cmdRun},
	{"put", "store a reading and print its receipt", cmdPut},
	{"get", "print the record with a txID", cmdGet},
	{"status", "print a node's id, ring neighbours and branch head", cmdStatus},
	{"ring", "print the ring, walked by successors", cmdRing},
	{"verify", "verify a ledger: prints valid or invalid: <where>", cmdVerify},
	{"checkpoints", "export the checkpoints a node holds, with cosignatures and any equivocation evidence", cmdCheckpoints},
	{"verify-record", "check a saved record and its proof (get --proof) offline: valid or invalid: <where>", cmdVerifyRecord},
	{"network", "network init: create a network's authority (keep it offline)", cmdNetwork},
	{"admit", "admit a node's data dir to a network (membership, node key if absent)", cmdAdmit},
	{"revoke", "sign a node's revocation and hand it to a member", cmdRevoke},
	{"token", "create, list or revoke credentials of devices and clients", cmdToken},
	{"device", "device keygen|sign|verify: a device's own key, its signed readings, their records' check", cmdDevice},
	{"keygen", "create the node key in the data dir and print the node ID", cmdKeygen},
	{"healthcheck", "exit 0 if the node answers /healthz", cmdHealthcheck},
	{"version", "print the version", cmdVersion},
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(args[1:], stdout)
			if err == nil {
				return exitOK
			}
			var ee *exitError
			if errors.As(err, &ee) {
				if ee.msg != "" {
					fmt.Fprintln(stderr, "flownode "+c.name+": "+ee.msg)
				}
				return ee.code
			}
			fmt.Fprintln(stderr, "flownode "+c.name+": "+err.Error())
			return exitUsage
		}
	}
	fmt.Fprintf(stderr, "flownode: unknown command %q; run 'flownode help' for the list\n", args[0])
	return exitUsage
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: flownode <command> [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery flag also reads FLOWNODE_<FLAG> from the environment; 'flownode <command> -h' lists the flags.")
}
