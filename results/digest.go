package results

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/influxdata/tdigest"
)

// Compression is the T-Digest compression used for every digest. At 100 the
// tails are too coarse for p99.99; 1000 keeps the extreme quantiles within a
// small rank error.
const Compression = 1000

// Digest is a latency distribution in milliseconds: a T-Digest plus the exact
// count, minimum, maximum and sum. It is not safe for concurrent use (the
// underlying digest mutates itself even when read).
type Digest struct {
	td    *tdigest.TDigest
	count int64
	min   float64
	max   float64
	sum   float64
}

// NewDigest returns an empty digest.
func NewDigest() *Digest {
	return &Digest{td: tdigest.NewWithCompression(Compression), min: math.Inf(1), max: math.Inf(-1)}
}

// Add records one value.
func (d *Digest) Add(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	d.td.Add(v, 1)
	d.count++
	d.sum += v
	d.min = math.Min(d.min, v)
	d.max = math.Max(d.max, v)
}

// Merge adds every value o holds into d. It adds o's centroids one at a
// time: tdigest v0.0.1's AddCentroidList skips a centroid whenever its
// buffer fills, silently losing weight (see TestAddCentroidListLosesWeight).
func (d *Digest) Merge(o *Digest) {
	if o == nil || o.count == 0 {
		return
	}
	for _, c := range o.td.Centroids() {
		d.td.AddCentroid(c)
	}
	d.count += o.count
	d.sum += o.sum
	d.min = math.Min(d.min, o.min)
	d.max = math.Max(d.max, o.max)
}

// Reset empties the digest, keeping its buffers.
func (d *Digest) Reset() {
	d.td.Reset()
	d.count, d.sum = 0, 0
	d.min, d.max = math.Inf(1), math.Inf(-1)
}

// Count returns how many values were added.
func (d *Digest) Count() int64 { return d.count }

// Quantile returns the q-quantile (0 ≤ q ≤ 1), clamped to the exact minimum
// and maximum; 0 for an empty digest (never NaN, which JSON cannot carry).
func (d *Digest) Quantile(q float64) float64 {
	if d.count == 0 {
		return 0
	}
	switch {
	case q <= 0:
		return d.min
	case q >= 1:
		return d.max
	}
	v := d.td.Quantile(q)
	return math.Min(math.Max(v, d.min), d.max)
}

// Quantiles are a digest's summary figures, in milliseconds.
type Quantiles struct {
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	P9999 float64 `json:"p9999"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
	Count int64   `json:"count"`
}

// Summary returns the digest's quantiles; all zero when it is empty.
func (d *Digest) Summary() Quantiles {
	if d.count == 0 {
		return Quantiles{}
	}
	return Quantiles{
		P50:   d.Quantile(0.50),
		P90:   d.Quantile(0.90),
		P99:   d.Quantile(0.99),
		P999:  d.Quantile(0.999),
		P9999: d.Quantile(0.9999),
		Min:   d.min,
		Max:   d.max,
		Mean:  d.sum / float64(d.count),
		Count: d.count,
	}
}

// savedDigest is a digest's form on disk: its centroids as [mean, weight]
// pairs and its exact figures.
type savedDigest struct {
	Count     int64        `json:"count"`
	Min       float64      `json:"min"`
	Max       float64      `json:"max"`
	Sum       float64      `json:"sum"`
	Centroids [][2]float64 `json:"centroids"`
}

// MarshalJSON saves the digest's centroids, so that it can be merged with
// others later.
func (d *Digest) MarshalJSON() ([]byte, error) { return json.Marshal(d.saved()) }

// saved returns the digest as it is saved: a copy, cheaper than a Merge
// into a new digest.
func (d *Digest) saved() savedDigest {
	s := savedDigest{Count: d.count, Sum: d.sum}
	if d.count > 0 {
		s.Min, s.Max = d.min, d.max
		cs := d.td.Centroids()
		s.Centroids = make([][2]float64, len(cs))
		for i, c := range cs {
			s.Centroids[i] = [2]float64{c.Mean, c.Weight}
		}
	}
	return s
}

// UnmarshalJSON restores a saved digest.
func (d *Digest) UnmarshalJSON(data []byte) error {
	var s savedDigest
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	*d = *NewDigest()
	var weight float64
	for _, c := range s.Centroids {
		if c[1] <= 0 || math.IsNaN(c[0]) {
			return fmt.Errorf("saved digest: bad centroid %v", c)
		}
		d.td.AddCentroid(tdigest.Centroid{Mean: c[0], Weight: c[1]})
		weight += c[1]
	}
	if int64(math.Round(weight)) != s.Count {
		return fmt.Errorf("saved digest: centroids weigh %g, count is %d", weight, s.Count)
	}
	d.count, d.sum = s.Count, s.Sum
	if s.Count > 0 {
		d.min, d.max = s.Min, s.Max
	}
	return nil
}
