#!/usr/bin/env bash
# Sourced by run_main.sh, run_tests.sh and record_notebooks.sh: the same arithmetic on every x86 machine.
# The committed notebooks carry outputs recorded with these settings, and nbval compares against them; a run
# folder (runs/mini) made with other settings can differ in the last printed decimal.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-2}"
export ATEN_CPU_CAPABILITY="${ATEN_CPU_CAPABILITY:-avx2}" MKL_ENABLE_INSTRUCTIONS="${MKL_ENABLE_INSTRUCTIONS:-AVX2}"
export ONEDNN_MAX_CPU_ISA="${ONEDNN_MAX_CPU_ISA:-AVX2}"
export PYTHONHASHSEED=0
