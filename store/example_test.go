package store_test

import (
	"context"
	"fmt"
	"os"

	"github.com/flownode/flownode/store"
)

func Example() {
	dir, _ := os.MkdirTemp("", "store-example")
	defer os.RemoveAll(dir)

	s, err := store.Open(dir, store.LocalOptions(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	rec := store.Record{TxID: [32]byte{1}, Thing: "urn:dev:lamp", Time: 42, Value: []byte(`{"on":true}`)}
	if err := s.Write(context.Background(), store.Write{Records: []store.Record{rec}}); err != nil {
		fmt.Println(err)
		return
	}
	v, _ := s.Record(rec.TxID)
	ids, _ := s.RecordsByThing("urn:dev:lamp", 0, 100, 0)
	fmt.Printf("%s %d\n", v, len(ids))
	// Output: {"on":true} 1
}
