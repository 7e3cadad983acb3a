package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Sysctls are the kernel parameters the real node may set: the kubelet's
// (overcommit, panic on OOM, keyrings), kube-proxy's (conntrack table and
// timeouts, route_localnet), the bridge plugin's (forwarding) and those of
// br_netfilter.
var Sysctls = []string{
	"vm.overcommit_memory",
	"vm.panic_on_oom",
	"kernel.panic",
	"kernel.panic_on_oops",
	"kernel.keys.root_maxkeys",
	"kernel.keys.root_maxbytes",
	"net.ipv4.ip_forward",
	"net.ipv4.conf.all.forwarding",
	"net.ipv4.conf.all.route_localnet",
	"net.ipv6.conf.all.forwarding",
	"net.bridge.bridge-nf-call-iptables",
	"net.bridge.bridge-nf-call-ip6tables",
	"net.netfilter.nf_conntrack_max",
	"net.netfilter.nf_conntrack_tcp_timeout_established",
	"net.netfilter.nf_conntrack_tcp_timeout_close_wait",
	"net.nf_conntrack_max",
}

// Paths are the directories the runtime, the kubelet and the CNI plugins
// create; a pattern with * is a glob, so that each cgroup controller's
// kubepods counts.
var Paths = []string{
	"/var/lib/kubelet",
	"/var/log/pods",
	"/var/log/containers",
	"/run/containerd",
	"/var/lib/containerd",
	"/var/lib/cni",
	"/var/run/netns",
	"/etc/cni/net.d",
	"/var/lib/runner-node",
	"/run/runner-node",
	"/sys/fs/cgroup/*/kubepods*",
	"/sys/fs/cgroup/kubepods*",
}

// Restore removes only what is recognisably the node's: chains, interfaces
// and network namespaces with these prefixes (kube-proxy's and the kubelet's
// chains, the CNI plugins', node-up.sh's fence and bridge, pods' veths), and
// mounts at or under the Paths. What else differs is named by check, never
// touched.
var (
	NodeChains     = []string{"KUBE-", "CNI-", "RUNNER-NODE-"}
	NodeInterfaces = []string{"runnerbr", "veth"}
	NodeNetns      = []string{"cni-"}
)

// Tables are the iptables tables whose chains are recorded.
var Tables = []string{"filter", "nat", "mangle", "raw"}

// State is what the real node may change on the host.
type State struct {
	Sysctls    map[string]string   `json:"sysctls"`    // those present, by name
	Chains     map[string][]string `json:"chains"`     // "iptables/nat" → its chains, sorted; tools not installed are left out
	Mounts     []string            `json:"mounts"`     // mount points, sorted
	Paths      []string            `json:"paths"`      // the Paths that exist, sorted
	Interfaces []string            `json:"interfaces"` // network interfaces, sorted
	Netns      []string            `json:"netns"`      // named network namespaces, sorted
}

// Host reads and restores the state of the file system at Root.
type Host struct {
	Root string
	// IPTables lists the chains of table with the command tool
	// ("iptables", "ip6tables"); nil runs tool-save. ok is false when
	// the tool is not installed.
	IPTables func(tool, table string) (chains []string, ok bool, err error)
	// Run runs a command that changes the host (iptables, ip); nil runs it.
	Run func(name string, args ...string) ([]byte, error)
	// Unmount detaches a mount point; nil calls umount2 with MNT_DETACH.
	Unmount func(target string) error
}

func (h Host) run(name string, args ...string) ([]byte, error) {
	if h.Run != nil {
		return h.Run(name, args...)
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

func (h Host) unmount(target string) error {
	if h.Unmount != nil {
		return h.Unmount(target)
	}
	return syscall.Unmount(h.path(target), syscall.MNT_DETACH)
}

func (h Host) path(p string) string { return filepath.Join(h.Root, p) }

// Read records the host's state now.
func (h Host) Read() (State, error) {
	st := State{Sysctls: map[string]string{}, Chains: map[string][]string{}}
	for _, k := range Sysctls {
		b, err := os.ReadFile(h.sysctlPath(k))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return st, err
		}
		st.Sysctls[k] = strings.TrimSpace(string(b))
	}
	list := h.IPTables
	if list == nil {
		list = iptablesSave
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, t := range Tables {
			chains, ok, err := list(tool, t)
			if err != nil {
				return st, fmt.Errorf("%s -t %s: %w", tool, t, err)
			}
			if ok {
				st.Chains[tool+"/"+t] = chains
			}
		}
	}
	mounts, err := h.mounts()
	if err != nil {
		return st, err
	}
	st.Mounts = mounts
	for _, p := range Paths {
		matches, _ := filepath.Glob(h.path(p))
		for _, m := range matches {
			rel, _ := filepath.Rel(h.Root, m)
			st.Paths = append(st.Paths, "/"+rel)
		}
	}
	sort.Strings(st.Paths)
	st.Interfaces = h.names("/sys/class/net")
	st.Netns = h.names("/var/run/netns")
	return st, nil
}

func (h Host) sysctlPath(key string) string {
	return h.path("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
}

// names lists a directory's entries, sorted; none when it does not exist.
func (h Host) names(dir string) []string {
	entries, _ := os.ReadDir(h.path(dir))
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// mounts reads the mount points of /proc/self/mountinfo (its fifth field).
func (h Host) mounts() ([]string, error) {
	f, err := os.Open(h.path("/proc/self/mountinfo"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 {
			out = append(out, fields[4])
		}
	}
	sort.Strings(out)
	return out, sc.Err()
}

// iptablesSave lists a table's chains from tool-save's ":CHAIN" lines.
func iptablesSave(tool, table string) ([]string, bool, error) {
	bin, err := exec.LookPath(tool + "-save")
	if err != nil {
		return nil, false, nil
	}
	out, err := exec.Command(bin, "-t", table).Output()
	if err != nil {
		// A table the kernel does not have (raw without its module).
		return nil, true, nil
	}
	var chains []string
	for _, line := range strings.Split(string(out), "\n") {
		if name, ok := strings.CutPrefix(line, ":"); ok {
			chains = append(chains, strings.Fields(name)[0])
		}
	}
	sort.Strings(chains)
	return chains, true, nil
}

// Restore undoes what the node left, as far as it is the node's, in the
// order that lets each part go: mounts under the Paths (deepest first),
// network namespaces, interfaces, iptables chains (the rules that jump to
// them first), cgroups (deepest first, by rmdir), the Paths themselves,
// and each sysctl back to its recorded value. It goes on past a failure
// and returns them all; check says what is still different.
func (h Host) Restore(before State) error {
	now, err := h.Read()
	if err != nil {
		return err
	}
	var errs []error
	fail := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	mounts := leftBehind(before.Mounts, now.Mounts)
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		if underPaths(m) {
			if err := h.unmount(m); err != nil {
				fail(fmt.Errorf("unmount %s: %w", m, err))
			}
		}
	}
	for _, n := range leftBehind(before.Netns, now.Netns) {
		if hasPrefix(n, NodeNetns) {
			_, err := h.run("ip", "netns", "delete", n)
			fail(err)
		}
	}
	for _, i := range leftBehind(before.Interfaces, now.Interfaces) {
		if hasPrefix(i, NodeInterfaces) {
			_, err := h.run("ip", "link", "delete", i)
			fail(err)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(now.Chains)) {
		tool, table, _ := strings.Cut(t, "/")
		var chains []string
		for _, c := range leftBehind(before.Chains[t], now.Chains[t]) {
			if hasPrefix(c, NodeChains) {
				chains = append(chains, c)
			}
		}
		fail(h.removeChains(tool, table, chains))
	}
	var cgroups, paths []string
	for _, p := range leftBehind(before.Paths, now.Paths) {
		if strings.HasPrefix(p, "/sys/fs/cgroup/") {
			cgroups = append(cgroups, p)
		} else {
			paths = append(paths, p)
		}
	}
	for _, c := range cgroups {
		fail(removeCgroup(h.path(c)))
	}
	for _, p := range paths {
		fail(os.RemoveAll(h.path(p)))
	}
	for k, v := range before.Sysctls {
		p := h.sysctlPath(k)
		now, err := os.ReadFile(p)
		if err != nil || strings.TrimSpace(string(now)) == v {
			continue
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			fail(fmt.Errorf("sysctl %s back to %s: %w", k, v, err))
		}
	}
	return errors.Join(errs...)
}

// removeChains deletes chains of a table: first every rule, in any chain
// of the table, that jumps to one of them (by its number, last first, as
// tool -S lists them), then their own rules, then the chains.
func (h Host) removeChains(tool, table string, chains []string) error {
	if len(chains) == 0 {
		return nil
	}
	gone := map[string]bool{}
	for _, c := range chains {
		gone[c] = true
	}
	out, err := h.run(tool, "-w", "-t", table, "-S")
	if err != nil {
		return err
	}
	type rule struct {
		chain string
		num   int
	}
	var jumps []rule
	num := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		num[f[1]]++
		if gone[f[1]] {
			continue
		}
		for i := 2; i+1 < len(f); i++ {
			if (f[i] == "-j" || f[i] == "-g") && gone[f[i+1]] {
				jumps = append(jumps, rule{f[1], num[f[1]]})
				break
			}
		}
	}
	var errs []error
	for i := len(jumps) - 1; i >= 0; i-- {
		if _, err := h.run(tool, "-w", "-t", table, "-D", jumps[i].chain, strconv.Itoa(jumps[i].num)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range chains {
		if _, err := h.run(tool, "-w", "-t", table, "-F", c); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range chains {
		if _, err := h.run(tool, "-w", "-t", table, "-X", c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeCgroup removes a cgroup and those under it, deepest first: a
// cgroup directory goes with rmdir once it has no children and no tasks.
func removeCgroup(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", dirs[i], err))
		}
	}
	return errors.Join(errs...)
}

// leftBehind lists what now holds more of than before, once per extra.
func leftBehind(before, now []string) []string {
	count := map[string]int{}
	for _, b := range before {
		count[b]--
	}
	var out []string
	for _, n := range now {
		if count[n]++; count[n] > 0 {
			out = append(out, n)
		}
	}
	return out
}

func underPaths(mount string) bool {
	for _, p := range Paths {
		if strings.Contains(p, "*") {
			continue
		}
		if mount == p || strings.HasPrefix(mount, p+"/") {
			return true
		}
	}
	return false
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Own are the marks only this test cluster's real node leaves: its
// directories, its bridge and its fence chain. A host that carries one of
// them without a record has lost the state it was in before (a node
// killed with its workdir), and a new record would take the leftovers
// for the host's own.
var Own = struct{ Paths, Interfaces, Chains []string }{
	Paths:      []string{"/var/lib/runner-node", "/run/runner-node"},
	Interfaces: []string{"runnerbr"},
	Chains:     []string{"RUNNER-NODE-"},
}

// Leftovers lists the marks of Own that st holds, one line each.
func (st State) Leftovers() []string {
	var out []string
	for _, p := range st.Paths {
		if hasPrefix(p, Own.Paths) {
			out = append(out, "path "+p)
		}
	}
	for _, m := range st.Mounts {
		if hasPrefix(m, Own.Paths) {
			out = append(out, "mount "+m)
		}
	}
	for _, i := range st.Interfaces {
		if hasPrefix(i, Own.Interfaces) {
			out = append(out, "interface "+i)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(st.Chains)) {
		for _, c := range st.Chains[t] {
			if hasPrefix(c, Own.Chains) {
				out = append(out, "chain "+t+" "+c)
			}
		}
	}
	return out
}

// Clean removes, without a record, what a node leaves: everything Restore
// would remove from a host that had none of it (its chains, interfaces,
// network namespaces and kubepods cgroups, mounts under the Paths), but
// of the directories only Own's, since the others may belong to a runtime
// installed on the host. Sysctls are left as they are: their values
// before are what was lost; Clean returns them as they are now, for a
// person to judge.
func (h Host) Clean() (map[string]string, error) {
	now, err := h.Read()
	if err != nil {
		return nil, err
	}
	base := State{Chains: map[string][]string{}}
	for _, m := range now.Mounts {
		if !underPaths(m) {
			base.Mounts = append(base.Mounts, m)
		}
	}
	for _, p := range now.Paths {
		if !hasPrefix(p, Own.Paths) && !strings.HasPrefix(p, "/sys/fs/cgroup/") {
			base.Paths = append(base.Paths, p)
		}
	}
	keep := func(names, prefixes []string) []string {
		var out []string
		for _, n := range names {
			if !hasPrefix(n, prefixes) {
				out = append(out, n)
			}
		}
		return out
	}
	base.Interfaces = keep(now.Interfaces, NodeInterfaces)
	base.Netns = keep(now.Netns, NodeNetns)
	for t, chains := range now.Chains {
		base.Chains[t] = keep(chains, NodeChains)
	}
	return now.Sysctls, h.Restore(base)
}

// Diff lists how now differs from before, one line per difference.
func Diff(before, now State) []string {
	var out []string
	for _, k := range Sysctls {
		b, inB := before.Sysctls[k]
		n, inN := now.Sysctls[k]
		if inB != inN || b != n {
			out = append(out, fmt.Sprintf("sysctl %s: %q before, %q now", k, b, n))
		}
	}
	tables := map[string]bool{}
	for t := range before.Chains {
		tables[t] = true
	}
	for t := range now.Chains {
		tables[t] = true
	}
	for _, t := range slices.Sorted(maps.Keys(tables)) {
		out = append(out, setDiff("chain "+t, before.Chains[t], now.Chains[t])...)
	}
	out = append(out, setDiff("mount", before.Mounts, now.Mounts)...)
	out = append(out, setDiff("path", before.Paths, now.Paths)...)
	out = append(out, setDiff("interface", before.Interfaces, now.Interfaces)...)
	out = append(out, setDiff("netns", before.Netns, now.Netns)...)
	return out
}

// setDiff names what now has more of than before (left behind) and the
// reverse (gone), counting repeats: a mount point mounted twice is two.
func setDiff(what string, before, now []string) []string {
	count := map[string]int{}
	for _, b := range before {
		count[b]--
	}
	for _, n := range now {
		count[n]++
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(count)) {
		switch c := count[k]; {
		case c > 0:
			out = append(out, fmt.Sprintf("%s %s: left behind (%d more)", what, k, c))
		case c < 0:
			out = append(out, fmt.Sprintf("%s %s: gone (%d fewer)", what, k, -c))
		}
	}
	return out
}
