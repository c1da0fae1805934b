package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// helperDirEnv tells the test binary, re-executed as a child, to run
// TestHelperProcess as a writer into the store in that directory.
const helperDirEnv = "FLOWNODE_STORE_HELPER_DIR"

// TestHelperProcess is not a test: run as a child by TestAckedWritesSurviveKill,
// it writes records from several goroutines until it is killed and prints
// the hex txID of each write as soon as Write has acknowledged it.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("helper process for TestAckedWritesSurviveKill")
	}
	o := LocalOptions()
	s, err := Open(dir, o, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	acks := make(chan [32]byte, 1024)
	for w := range 8 {
		go func() {
			for i := w * 10_000_000; ; i++ {
				r := testRecord(i)
				if err := s.Write(context.Background(), Write{Records: []Record{r}}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				acks <- r.TxID
			}
		}()
	}
	// One goroutine prints, one line per write(2), so a kill never leaves a
	// torn line for an acknowledged record.
	line := make([]byte, 65)
	line[64] = '\n'
	deadline := time.After(time.Minute) // in case the parent dies first
	for {
		select {
		case id := <-acks:
			hex.Encode(line, id[:])
			if _, err := os.Stdout.Write(line); err != nil {
				os.Exit(2)
			}
		case <-deadline:
			os.Exit(3)
		}
	}
}

// TestAckedWritesSurviveKill SIGKILLs a child process that is writing
// records mid-stream, then reopens its store: every record the child saw
// acknowledged must be there, byte-identical and indexed.
func TestAckedWritesSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := selfCommand("-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	var acked [][32]byte
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		b, err := hex.DecodeString(sc.Text())
		if err != nil || len(b) != 32 {
			continue // go test's own output
		}
		acked = append(acked, [32]byte(b))
		if len(acked) == 3000 && !killed {
			// Kill mid-stream, then keep reading: lines already in the pipe
			// were acknowledged before the kill.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before the kill: %v\n%s", err, stderr.String())
	}
	t.Logf("child killed after %d acknowledged writes", len(acked))

	s := openLocal(t, dir)
	for _, id := range acked {
		got, err := s.Record(id)
		if err != nil {
			t.Fatalf("acknowledged record %x lost: %v", id, err)
		}
		if !bytes.Equal(got, recordValue(id)) {
			t.Fatalf("acknowledged record %x changed", id)
		}
	}
	// Index entries were in the same commits as their records.
	inIndex := map[[32]byte]bool{}
	if err := s.EachThingIndex(func(_ string, _ int64, id [32]byte) error { inIndex[id] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, id := range acked {
		if !inIndex[id] {
			t.Fatalf("acknowledged record %x missing from the thing index", id)
		}
	}
	t.Logf("store has %d records: %d acknowledged, the rest in flight at the kill", len(inIndex), len(acked))
}

// selfCommand runs this test binary again with args. Under user-mode emulation
// without binfmt_misc (make test-32bit on a kernel that cannot run the 32-bit
// binary itself) the binary cannot exec itself directly: FLOWNODE_TEST_EXEC
// names the emulator to put in front, as go test's -exec did for the parent.
func selfCommand(args ...string) *exec.Cmd {
	if emu := os.Getenv("FLOWNODE_TEST_EXEC"); emu != "" {
		return exec.Command(emu, append([]string{os.Args[0]}, args...)...)
	}
	return exec.Command(os.Args[0], args...)
}
