package target

import "testing"

func TestParseSink(t *testing.T) {
	tests := []struct {
		in   string
		want Sink
		bad  bool
	}{
		{in: "receiver/perf", want: Sink{Kind: SinkReceiver, Name: "perf"}},
		{in: "channel/perf", want: Sink{Kind: SinkChannel, Name: "perf"}},
		{in: "broker/default", want: Sink{Kind: SinkBroker, Name: "default"}},
		{in: "kafka/perf-topic", want: Sink{Kind: SinkKafka, Name: "perf-topic"}},
		{in: "service/app:8080", want: Sink{Kind: SinkService, Name: "app", Port: 8080}},
		{in: "pod/app-0:18999/events/in", want: Sink{Kind: SinkPod, Name: "app-0", Port: 18999, Path: "events/in"}},
		{in: "receiver/", bad: true},
		{in: "receiver", bad: true},
		{in: "service/app", bad: true},
		{in: "service/app:0", bad: true},
		{in: "pod/:80", bad: true},
		{in: "pod/a:70000", bad: true},
		{in: "queue/x", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSink(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("ParseSink(%q) = %+v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSink(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			if got.String() != tc.in {
				t.Errorf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"": Local, "local": Local, "kubernetes": Kubernetes} {
		if got, err := ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseKind("k8s"); err == nil {
		t.Error("ParseKind(k8s) gave no error")
	}
}
