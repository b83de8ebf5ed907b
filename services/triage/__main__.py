from services.triage.main import main

main()
