package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
)

// authPolicy reads run's --auth and --open-reads. --auth "" takes the
// profile's default: a gateway in the field asks every client for a
// credential; a dev node (laptop, local) lets its own machine in without one.
func authPolicy(mode string, openReads bool, profile node.Profile) (access.Policy, error) {
	if mode == "" {
		mode = "loopback"
		if profile.Name == "gateway" {
			mode = "all"
		}
	}
	switch mode {
	case "loopback":
		return access.Policy{OpenLoopback: true, OpenReads: openReads}, nil
	case "all":
		return access.Policy{OpenReads: openReads}, nil
	}
	return access.Policy{}, usageErr("--auth %q: use loopback (clients on this machine need no credential) or all", mode)
}

// newGuard makes the node's guard. The network's device secret, from which
// CoAP devices' PSKs derive, is in the data dir (admit writes it); a data dir
// that holds the authority key (a one-node network) derives it. Without
// either, PSK devices are turned away and the log says how to fix it.
func newGuard(n *node.Node, dataDir string, p access.Policy, log *zap.Logger) (*access.Guard, error) {
	secret, err := network.LoadDeviceSecret(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(dataDir, network.AuthorityKeyFile)); serr == nil {
			a, aerr := network.LoadAuthority(dataDir)
			if aerr != nil {
				return nil, aerr
			}
			secret, err = a.DeviceSecret(), nil
		} else {
			log.Warn("this data dir holds no device secret, so CoAP devices cannot use DTLS PSK here; admit it again to add "+network.DeviceSecretFile,
				zap.String("data", dataDir))
			err = nil
		}
	}
	if err != nil {
		return nil, err
	}
	return access.NewGuard(n.Members(), p, secret), nil
}
