from ftk.docs_reference import main

raise SystemExit(main())
