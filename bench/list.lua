-- GET /api/v3/core/users/?page_size=20 with the bearer token from $BENCH_TOKEN.
dofile(os.getenv("BENCH_DIR") .. "/status.lua")
wrk.method = "GET"
wrk.path = "/api/v3/core/users/?page_size=20"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
