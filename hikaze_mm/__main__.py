from hikaze_mm.cli import main

raise SystemExit(main())
