#!/usr/bin/env node
import "../dist/tidemark.mjs"
