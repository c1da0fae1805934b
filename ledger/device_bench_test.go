package ledger

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkDeviceCheck: the cost the owner pays per reading to check a device
// signature (stamp derivation and ed25519 verification, checkDevices on one
// reading), and, for comparison, what the device pays to sign one and what
// verifying a stored record costs with and without a device signature.
func BenchmarkDeviceCheck(b *testing.B) {
	dev := deviceKey(1)
	data, _ := CanonicalData(payload)
	r := signed(b, dev, "sensor-1", string(payload))
	rs := []Reading{r}
	if err := StampReadings(rs, time.Now(), nil); err != nil {
		b.Fatal(err)
	}
	datas := [][]byte{data}
	report := func(b *testing.B) {
		per := b.Elapsed().Seconds() / float64(b.N)
		b.ReportMetric(1/per, "readings/s")
	}
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			if err := checkDevices(rs, datas); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("sign-on-device", func(b *testing.B) {
		for b.Loop() {
			if _, err := SignDevice(dev, "sensor-1", payload); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	id, _ := GenerateIdentity(nil)
	for _, withDevice := range []bool{false, true} {
		rec := &Record{Key: Key{1}, Salt: make([]byte, SaltSize), Thing: "sensor-1", Time: 1, Data: data}
		if withDevice {
			rec.Device = r.Device
			rec.Salt, rec.Key = DeviceStamp("sensor-1", r.Device.Sig)
		}
		rec.HData = DataHash(data, 1, rec.Salt)
		rec.TxID = TxID(Hash{}, rec.HData)
		rec.Block = BlockRef{Branch: id.ID}
		raw, err := SignRecord(rec, id)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("verify-record/device=%v", withDevice), func(b *testing.B) {
			for b.Loop() {
				p, err := ParseRecord(raw)
				if err == nil {
					err = p.CheckSelf(raw)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
	}
	b.Logf("GOMAXPROCS %d, %s/%s, reading %d bytes", runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, len(data))
}

// BenchmarkAppendDevice: durable signed records per second through one ledger,
// one writer, one reading per Append, with and without a device signature (the
// device-signed readings are signed beforehand, as devices do).
func BenchmarkAppendDevice(b *testing.B) {
	for _, withDevice := range []bool{false, true} {
		b.Run(fmt.Sprintf("device=%v", withDevice), func(b *testing.B) {
			f := benchFixture(b)
			dev := deviceKey(1)
			rs := make([]Reading, b.N)
			for i := range rs {
				data := fmt.Sprintf(`{"n":%d,"celsius":21.5,"site":"greenhouse-3"}`, i)
				rs[i] = Reading{Thing: "sensor-1", Data: []byte(data)}
				if withDevice {
					rs[i] = signed(b, dev, "sensor-1", data)
				}
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := range rs {
				if _, err := f.l.Append(ctx, rs[i:i+1]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
