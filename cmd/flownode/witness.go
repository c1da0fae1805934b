package main

import (
	"go.uber.org/zap"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/witness"
)

// serveWitness starts the node's witnessing (its branch's checkpoints, its
// cosignatures of its predecessors', record proofs) and mounts its routes and
// metrics on the API.
func serveWitness(n *node.Node, srv *api.Server, log *zap.Logger, guard *access.Guard) (stop func(), err error) {
	w, err := witness.New(n, witness.Config{Log: log.Named("witness"), Authorize: guard})
	if err != nil {
		return func() {}, err
	}
	for pattern, h := range w.Routes() {
		srv.Handle(pattern, h)
	}
	if err := srv.Register(w.Collectors()...); err != nil {
		w.Close()
		return func() {}, err
	}
	return w.Close, nil
}
