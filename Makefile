# flownode — see README.md. Every target is safe to run from a clean checkout.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/flownode/flownode/node.Version=$(VERSION)
BIN       := bin/flownode
DATA      ?= ./data
HTTP      ?= :8000
PROFILE   ?= laptop

.PHONY: all build run test test-short bench lint fuzz-short soak clean

all: lint test build

## build: the flownode binary in bin/ (static, stripped)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/flownode

## run: a dev node with its Badger store in ./data; prints where its dashboard is
run: build
	./$(BIN) run --data $(DATA) --http $(HTTP) --profile $(PROFILE)

# The live-ring tests run real timers over real sockets; they run after the rest, so
# the CPU-bound simulator does not starve them.
LIVE_PKGS := ./chord/driver/ ./cmd/flownode/ ./node/

## test: vet, then every test with the race detector (the protocol packages need it)
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v -e /chord/driver -e /cmd/flownode -e '/node$$')
	$(GO) test -race -count=1 -timeout 20m -p 1 $(LIVE_PKGS)

## test-short: the quick subset, for the edit loop
test-short:
	$(GO) test -short -count=1 ./...

## bench: benchmarks that print figures (never pass/fail on time)
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x -count=1 ./miner/ -cpu 1,2
	$(GO) test -run '^$$' -bench . -benchtime 1x -count=1 ./ledger/
	$(GO) test -run '^$$' -bench . -count=1 ./store/
	$(GO) test -run '^$$' -bench . -benchtime 1x -count=1 ./cmd/flownode/
	$(GO) test -run '^$$' -bench . -benchtime 1x -count=1 ./chord/ ./chord/chordsim/ ./chord/peercache/
	$(GO) test -run '^$$' -bench Lookup -benchtime 2000x -count=1 ./chord/driver/
	$(GO) test -run '^$$' -bench Maintenance -benchtime 1x -count=1 ./chord/driver/
	$(GO) test -run '^$$' -bench 'RingIngest' -benchtime 50x -count=1 ./node/
	$(GO) test -run '^$$' -bench 'ReadByTxID' -benchtime 2000x -count=1 ./node/
	$(GO) test -run '^$$' -bench 'RestoreCopies' -benchtime 3x -count=1 ./node/

## lint: gofmt, go vet, and vet of the 32-bit gateway targets
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOARCH=mipsle GOMIPS=softfloat $(GO) vet ./...
	GOARCH=386 $(GO) vet ./...

## fuzz-short: a short coverage-guided run of every fuzz target (seeds run in make test)
FUZZTIME ?= 8s
fuzz-short:
	@set -e; for t in FuzzDecode FuzzWSFrame FuzzCoAPBody FuzzCoAPDatagram; do \
	  $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./rpc/; done
	$(GO) test -run '^$$' -fuzz '^FuzzStepJSON$$' -fuzztime $(FUZZTIME) ./chord/

## soak: 10,000 simulator seeds across the Chord scenarios
soak:
	CHORDSIM_SEEDS=10000 $(GO) test -count=1 -run TestSoak -timeout 60m ./chord/chordsim

clean:
	rm -rf bin
