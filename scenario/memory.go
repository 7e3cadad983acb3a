package scenario

import (
	"github.com/perfrunner/runner/internal/strictyaml"
	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/measure"
	"github.com/perfrunner/runner/pace"
)

// memoryUser is a step kind that needs memory in proportion to its pace.
type memoryUser interface {
	Memory(run []pace.Step) (measure.Memory, bool)
}

// checkMemory refuses, before anything is installed, a run whose loads do
// not fit in the memory budget (see loadgen.MemoryBudget): the runner
// would otherwise crash out of memory in the middle of measure.
func checkMemory(d strictyaml.Diags, sc *Scenario) {
	var loads []measure.Memory
	var at []*Step
	for _, phase := range sc.Steps {
		for _, s := range phase {
			u, ok := s.Spec.(memoryUser)
			if !ok {
				continue
			}
			if m, ok := u.Memory(sc.Pace.Steps); ok {
				loads = append(loads, m)
				at = append(at, s)
			}
		}
	}
	if len(loads) == 0 {
		return
	}
	budget, from := loadgen.MemoryBudget()
	if worst, err := measure.CheckMemory(loads, budget, from); err != nil {
		s := at[worst]
		*d.List = append(*d.List, strictyaml.Diagnostic{Pos: s.Pos, Context: s.Label(), Message: err.Error()})
	}
}
