from services.termination.main import main

main()
