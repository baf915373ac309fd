package memory_test

import (
	"testing"

	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/memory"
	"github.com/agencyplane/agencyplane/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunAll(t, func(*testing.T) store.Store { return memory.New() })
}
