package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost lays out a file system with two sysctls, one mount, one
// interface and one cgroup controller, and iptables with a filter and a
// nat table (ip6tables not installed).
func fakeHost(t *testing.T) (Host, map[string][]string) {
	root := t.TempDir()
	write := func(p, content string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/sys/vm/overcommit_memory", "0\n")
	write("proc/sys/net/ipv4/ip_forward", "0\n")
	write("proc/self/mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")
	write("sys/class/net/lo/type", "772\n")
	if err := os.MkdirAll(filepath.Join(root, "sys/fs/cgroup/memory"), 0o755); err != nil {
		t.Fatal(err)
	}
	chains := map[string][]string{"iptables/filter": {"FORWARD", "INPUT", "OUTPUT"}, "iptables/nat": {"POSTROUTING", "PREROUTING"}}
	h := Host{Root: root, IPTables: func(tool, table string) ([]string, bool, error) {
		if tool != "iptables" {
			return nil, false, nil // as if ip6tables were not installed
		}
		return chains[tool+"/"+table], true, nil
	}}
	return h, chains
}

// TestEveryChangeIsFoundAndRestored changes each kind of state a node
// leaves: check names each, restore undoes what is the node's (through
// commands that, here, change the fake host as the real ones would) and
// leaves alone what is not, which check still names.
func TestEveryChangeIsFoundAndRestored(t *testing.T) {
	h, chains := fakeHost(t)
	before, err := h.Read()
	if err != nil {
		t.Fatal(err)
	}
	if before.Sysctls["vm.overcommit_memory"] != "0" || len(before.Sysctls) != 2 || len(before.Mounts) != 1 || before.Interfaces[0] != "lo" {
		t.Fatalf("recorded %+v", before)
	}
	r := func(p string) string { return filepath.Join(h.Root, p) }
	mountinfo := []string{"22 1 8:1 / / rw - ext4 /dev/sda1 rw"}
	writeMounts := func() {
		_ = os.WriteFile(r("proc/self/mountinfo"), []byte(strings.Join(mountinfo, "\n")+"\n"), 0o644)
	}
	_ = os.WriteFile(r("proc/sys/vm/overcommit_memory"), []byte("1\n"), 0o644)
	_ = os.WriteFile(r("proc/sys/net/ipv4/ip_forward"), []byte("1\n"), 0o644)
	chains["iptables/nat"] = []string{"KUBE-SERVICES", "POSTROUTING", "PREROUTING", "USER-OWN"}
	mountinfo = append(mountinfo,
		"40 22 8:1 /kubelet /var/lib/kubelet rw - ext4 /dev/sda1 rw",
		"41 22 8:1 /kubelet /var/lib/kubelet rw - ext4 /dev/sda1 rw",
		"42 40 0:5 / /var/lib/kubelet/pods/x/volumes/secret rw - tmpfs tmpfs rw",
		"43 22 0:6 / /mnt/user-own rw - tmpfs tmpfs rw")
	writeMounts()
	for _, d := range []string{"var/lib/kubelet/pods/x", "sys/fs/cgroup/memory/kubepods/burstable/pod1", "sys/class/net/veth12", "sys/class/net/cni0", "var/run/netns/cni-1"} {
		_ = os.MkdirAll(r(d), 0o755)
	}
	now, err := h.Read()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Diff(before, now), "\n")
	for _, want := range []string{
		`sysctl vm.overcommit_memory: "0" before, "1" now`,
		`sysctl net.ipv4.ip_forward: "0" before, "1" now`,
		"chain iptables/nat KUBE-SERVICES: left behind (1 more)",
		"mount /var/lib/kubelet: left behind (2 more)",
		"path /var/lib/kubelet: left behind",
		"path /sys/fs/cgroup/memory/kubepods: left behind",
		"interface cni0: left behind",
		"netns cni-1: left behind",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the differences do not say %q:\n%s", want, got)
		}
	}

	var ran []string
	h.Unmount = func(target string) error {
		ran = append(ran, "umount "+target)
		for i := len(mountinfo) - 1; i >= 0; i-- {
			if strings.Fields(mountinfo[i])[4] == target {
				mountinfo = append(mountinfo[:i], mountinfo[i+1:]...)
				break
			}
		}
		writeMounts()
		return nil
	}
	h.Run = func(name string, args ...string) ([]byte, error) {
		cmd := name + " " + strings.Join(args, " ")
		ran = append(ran, cmd)
		switch {
		case cmd == "iptables -w -t nat -S":
			return []byte("-P PREROUTING ACCEPT\n-N KUBE-SERVICES\n-N USER-OWN\n" +
				"-A PREROUTING -j USER-OWN\n" +
				`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES` + "\n" +
				"-A KUBE-SERVICES -j RETURN\n"), nil
		case cmd == "iptables -w -t nat -X KUBE-SERVICES":
			chains["iptables/nat"] = []string{"POSTROUTING", "PREROUTING", "USER-OWN"}
		case name == "ip" && args[0] == "link":
			_ = os.RemoveAll(r("sys/class/net/" + args[2]))
		case name == "ip" && args[0] == "netns":
			_ = os.RemoveAll(r("var/run/netns/" + args[2]))
		}
		return nil, nil
	}
	if err := h.Restore(before); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"umount /var/lib/kubelet/pods/x/volumes/secret",
		"umount /var/lib/kubelet",
		"umount /var/lib/kubelet",
		"ip netns delete cni-1",
		"ip link delete veth12",
		"iptables -w -t nat -S",
		"iptables -w -t nat -D PREROUTING 2",
		"iptables -w -t nat -F KUBE-SERVICES",
		"iptables -w -t nat -X KUBE-SERVICES",
	}
	if strings.Join(ran, "\n") != strings.Join(want, "\n") {
		t.Errorf("restore ran\n%s\nwant\n%s", strings.Join(ran, "\n"), strings.Join(want, "\n"))
	}
	after, err := h.Read()
	if err != nil {
		t.Fatal(err)
	}
	left := strings.Join(Diff(before, after), "\n")
	wantLeft := strings.Join([]string{
		"chain iptables/nat USER-OWN: left behind (1 more)",
		"mount /mnt/user-own: left behind (1 more)",
		"interface cni0: left behind (1 more)",
	}, "\n")
	if left != wantLeft {
		t.Errorf("after restoring, what is not the node's should be all that is left:\n%s\nwant\n%s", left, wantLeft)
	}
}

// TestCheckFailsOnADifference runs save and check as down.sh does.
func TestCheckFailsOnADifference(t *testing.T) {
	h, _ := fakeHost(t)
	file := filepath.Join(t.TempDir(), "before.json")
	if err := run(h, "save", file); err != nil {
		t.Fatal(err)
	}
	if err := run(h, "check", file); err != nil {
		t.Errorf("an unchanged host: %v", err)
	}
	_ = os.MkdirAll(filepath.Join(h.Root, "var/run/netns/cni-1"), 0o755)
	if err := run(h, "check", file); err == nil || !strings.Contains(err.Error(), "2 places") {
		t.Errorf("a host with a netns and its directory left: %v", err)
	}
	if err := run(h, "frobnicate", file); err == nil {
		t.Error("an unknown command passed")
	}
}

// TestALostRecordIsNotReplacedByTheNodesLeftovers leaves a node's marks on
// a host with no record: save refuses, naming them; clean removes what is
// the node's (not a directory a runtime on the host may own), says the
// sysctls as they are, and then save records the host.
func TestALostRecordIsNotReplacedByTheNodesLeftovers(t *testing.T) {
	h, chains := fakeHost(t)
	r := func(p string) string { return filepath.Join(h.Root, p) }
	for _, d := range []string{"var/lib/runner-node/kubelet", "var/lib/containerd", "sys/class/net/runnerbr0", "sys/fs/cgroup/memory/kubepods/pod1"} {
		_ = os.MkdirAll(r(d), 0o755)
	}
	_ = os.WriteFile(r("proc/self/mountinfo"), []byte("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"+
		"40 22 8:1 /x /var/lib/runner-node/kubelet rw - ext4 /dev/sda1 rw\n"), 0o644)
	chains["iptables/mangle"] = []string{"FORWARD", "RUNNER-NODE-FENCE"}
	file := filepath.Join(t.TempDir(), "before.json")
	err := run(h, "save", file)
	for _, want := range []string{"path /var/lib/runner-node", "mount /var/lib/runner-node/kubelet", "interface runnerbr0", "chain iptables/mangle RUNNER-NODE-FENCE", "clean"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("save on a host with a node's leftovers: %v; want it to name %q", err, want)
		}
	}
	if _, statErr := os.Stat(file); statErr == nil {
		t.Error("save wrote a record of the leftovers")
	}

	var ran []string
	h.Unmount = func(target string) error {
		ran = append(ran, "umount "+target)
		return os.WriteFile(r("proc/self/mountinfo"), []byte("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"), 0o644)
	}
	h.Run = func(name string, args ...string) ([]byte, error) {
		cmd := name + " " + strings.Join(args, " ")
		ran = append(ran, cmd)
		switch {
		case cmd == "iptables -w -t mangle -S":
			return []byte("-N RUNNER-NODE-FENCE\n-A FORWARD -i runnerbr0 -j RUNNER-NODE-FENCE\n-A RUNNER-NODE-FENCE -j DROP\n"), nil
		case cmd == "iptables -w -t mangle -X RUNNER-NODE-FENCE":
			chains["iptables/mangle"] = []string{"FORWARD"}
		case name == "ip" && args[0] == "link":
			_ = os.RemoveAll(r("sys/class/net/" + args[2]))
		}
		return nil, nil
	}
	var out strings.Builder
	if err := clean(h, &out); err != nil {
		t.Fatalf("clean: %v\n%s", err, out.String())
	}
	want := strings.Join([]string{
		"umount /var/lib/runner-node/kubelet",
		"ip link delete runnerbr0",
		"iptables -w -t mangle -S",
		"iptables -w -t mangle -D FORWARD 1",
		"iptables -w -t mangle -F RUNNER-NODE-FENCE",
		"iptables -w -t mangle -X RUNNER-NODE-FENCE",
	}, "\n")
	if got := strings.Join(ran, "\n"); got != want {
		t.Errorf("clean ran\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(out.String(), "vm.overcommit_memory = 0") {
		t.Errorf("clean does not say the sysctls as they are:\n%s", out.String())
	}
	for _, p := range []string{"var/lib/runner-node", "sys/fs/cgroup/memory/kubepods"} {
		if _, err := os.Stat(r(p)); err == nil {
			t.Errorf("clean left %s", p)
		}
	}
	if _, err := os.Stat(r("var/lib/containerd")); err != nil {
		t.Errorf("clean removed a directory that may be the host's own: %v", err)
	}
	if err := run(h, "save", file); err != nil {
		t.Errorf("save after clean: %v", err)
	}
}
