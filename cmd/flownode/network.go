package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
)

// The permissioned ring from the operator's side: an authority directory
// (network init) that stays offline, memberships it signs for nodes' data
// directories (admit), and revocations it signs (revoke) and hands to any
// member, which spreads them round the ring.

// revocationsDir is where revoke keeps the revocations it signed, in the
// authority directory: the record of who was revoked, and what to post again.
const revocationsDir = "revocations"

func cmdNetwork(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "init" {
		return usageErr("want a subcommand: flownode network init --dir DIR [--network NAME] [--profile laptop|gateway|local]")
	}
	fs := newFlags("network init")
	dir := fs.String("dir", "", "directory to create the network's authority in (required; keep it offline)")
	name := fs.String("network", ledger.DefaultNetwork, "the network's name")
	profileName := fs.String("profile", "laptop", "whose mining rules the network takes: gateway, laptop or local")
	rest, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 0, "no arguments"); err != nil {
		return err
	}
	if *dir == "" {
		return usageErr("--dir is required: the directory that will hold the authority key")
	}
	profile, err := node.ProfileNamed(*profileName)
	if err != nil {
		return usageErr("%v", err)
	}
	a, err := network.Init(*dir, *name, profile.Mining)
	if err != nil {
		return usageErr("%v", err)
	}
	d := a.Description
	fmt.Fprintf(stdout, "network %s (authority %s, %s mining rules)\n", d.Name, d.Fingerprint(), profile.Name)
	fmt.Fprintf(stdout, "wrote %s and %s\n", filepath.Join(*dir, network.AuthorityKeyFile), filepath.Join(*dir, network.DescriptionFile))
	_, err = fmt.Fprintf(stdout, "keep %s offline: whoever holds it can admit and revoke members, and no node needs it.\n",
		filepath.Join(*dir, network.AuthorityKeyFile))
	return err
}

// loadAuthority reads --network DIR for admit and revoke.
func loadAuthority(dir string) (*network.Authority, error) {
	if dir == "" {
		return nil, usageErr("--network is required: the authority directory (flownode network init made it)")
	}
	if _, err := os.Stat(filepath.Join(dir, network.DescriptionFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, usageErr("%s is not an authority directory: it holds no %s (flownode network init makes one)", dir, network.DescriptionFile)
	}
	a, err := network.LoadAuthority(dir)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return a, nil
}

func cmdAdmit(args []string, stdout io.Writer) error {
	fs := newFlags("admit")
	authDir := fs.String("network", "", "the network's authority directory (required)")
	data := fs.String("data", "", "the data directory of the node to admit (required; its node key is created when absent)")
	expires := fs.Duration("expires", network.DefaultValidity, "how long the membership is valid")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 0, "no arguments"); err != nil {
		return err
	}
	if *data == "" {
		return usageErr("--data is required: the data directory of the node to admit")
	}
	if *expires <= 0 {
		return usageErr("--expires %v: want a positive duration such as 8760h", *expires)
	}
	a, err := loadAuthority(*authDir)
	if err != nil {
		return err
	}
	if abs(*authDir) == abs(*data) {
		return usageErr("--data is the authority directory itself; admit a node's own data directory")
	}
	m, err := a.AdmitDir(*data, time.Now().Add(*expires))
	if err != nil {
		return usageErr("%v", err)
	}
	_, err = fmt.Fprintf(stdout, "%s admitted to network %s (authority %s) until %s\n",
		m.Node.Hex(), a.Description.Name, a.Description.Fingerprint(), m.NotAfter.UTC().Format(time.RFC3339))
	return err
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	return a
}

func cmdRevoke(args []string, stdout io.Writer) error {
	fs := newFlags("revoke")
	authDir := fs.String("network", "", "the network's authority directory (required)")
	nodeURL := fs.String("node", "", "URL of a running member to hand the revocation to (it spreads it round the ring); none: only write the file")
	reason := fs.String("reason", "", "why the node is revoked (up to 256 bytes, kept in the revocation)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 1, "one NODEID"); err != nil {
		return err
	}
	id, err := ledger.ParseKey(rest[0])
	if err != nil {
		return usageErr("NODEID %q: want the node's 40-hex ID", rest[0])
	}
	a, err := loadAuthority(*authDir)
	if err != nil {
		return err
	}
	var c *apiClient
	if *nodeURL != "" {
		if c, err = newClient(*nodeURL, 30*time.Second); err != nil {
			return err
		}
	}
	path := filepath.Join(*authDir, revocationsDir, id.Hex()+".json")
	r, fresh, err := signedRevocation(a, id, *reason, path)
	if err != nil {
		return err
	}
	if fresh {
		fmt.Fprintf(stdout, "revoked node %s at %s; wrote %s\n", id.Hex(), r.At().UTC().Format(time.RFC3339), path)
	} else {
		fmt.Fprintf(stdout, "node %s was already revoked at %s (%s)\n", id.Hex(), r.At().UTC().Format(time.RFC3339), path)
	}
	if c == nil {
		_, err = fmt.Fprintf(stdout, "hand it to any member: flownode revoke --network %s --node URL %s\n", *authDir, id.Hex())
		return err
	}
	return postRevocation(c, r, stdout)
}

// signedRevocation returns the revocation of id kept at path, or signs a new
// one and writes it there. A revocation is signed once: posting it again keeps
// its time, so members that already hold it see nothing new.
func signedRevocation(a *network.Authority, id ledger.Key, reason, path string) (*network.Revocation, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		var r network.Revocation
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, false, usageErr("%s is damaged (%v); move it away to sign a new revocation", path, err)
		}
		if err := a.Description.CheckRevocation(&r); err != nil {
			return nil, false, usageErr("%s: %v", path, err)
		}
		return &r, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, usageErr("%v", err)
	}
	r, err := a.Revoke(id, reason)
	if err != nil {
		return nil, false, usageErr("%v", err)
	}
	if err := a.Description.CheckRevocation(r); err != nil {
		return nil, false, usageErr("%v", err)
	}
	out, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, usageErr("%v", err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		return nil, false, usageErr("%v", err)
	}
	return r, true, nil
}

// postRevocation hands r to a member. A member that refuses it (another
// network, a bad signature) is a negative answer.
func postRevocation(c *apiClient, r *network.Revocation, stdout io.Writer) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	resp, err := c.http.Post(c.base+"/api/v1/network/revocations", "application/json", bytes.NewReader(body))
	if err != nil {
		return usageErr("cannot reach %s: %v", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return usageErr("reading the answer from %s: %v", c.base, err)
	}
	switch {
	case resp.StatusCode == http.StatusBadRequest:
		return negative("%s: %s", c.base, serverMessage(out, resp.Status))
	case resp.StatusCode != http.StatusOK:
		return usageErr("%s", serverMessage(out, resp.Status))
	}
	var ans struct {
		Accepted bool `json:"accepted"`
	}
	if err := json.Unmarshal(out, &ans); err != nil {
		return usageErr("unexpected answer from the node: %v", err)
	}
	if ans.Accepted {
		_, err = fmt.Fprintf(stdout, "%s accepted it and passes it round the ring\n", c.base)
	} else {
		_, err = fmt.Fprintf(stdout, "%s already held it\n", c.base)
	}
	return err
}
