from services.entrust.main import main

main()
