"""`canary demo`: the production controller against a simulated cluster, a real Prometheus, a Tempo
endpoint and a Slack receiver, all on 127.0.0.1, playing a scripted canary story.

`canary_testkit.demo.command.demo` is the CLI command, `canary_testkit.demo.run.run_demo(DemoOptions(...), ...)` the
same from Python; this package imports nothing heavy until the demo runs."""
